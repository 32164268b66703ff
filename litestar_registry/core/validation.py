"""Input rules that belong to the domain, whichever dialect the input came through."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from litestar_registry.core.errors import InvalidInput

__all__ = (
    "MAX_DEPTH",
    "MAX_ITEMS",
    "NO_NUL_PATTERN",
    "SEARCH_MAX_LENGTH",
    "SLUG_MAX_LENGTH",
    "SLUG_PATTERN",
    "check_slug",
    "check_storable",
)

SLUG_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
"""A lowercase letter, then lowercase letters and digits, with single hyphens between (seeds 000 and 004)."""
SLUG_MAX_LENGTH = 63
MAX_ITEMS = 100
"""Most entries in one list or map of a request: bounds what one registration can make the store hold."""
MAX_DEPTH = 32
"""Deepest nesting of lists and maps in free-form data (``metadata``, the TTL dialect's ``info``)."""
NO_NUL_PATTERN = r"^[^\x00]*$"
"""Text without U+0000, which PostgreSQL cannot store: on every string the wire takes, so the schema says so."""
SEARCH_MAX_LENGTH = 200
"""Longest text filter (``q``): a bound on the work one query asks of a store (SQLite refuses long LIKE patterns)."""

_SLUG = re.compile(SLUG_PATTERN)


def check_slug(slug: str) -> str:
    """Return ``slug`` if it is valid; ``InvalidInput`` otherwise.

    ``fullmatch`` matters: ``re.search`` with ``$`` accepts a trailing newline, which a slug must not have.
    """
    if len(slug) > SLUG_MAX_LENGTH or _SLUG.fullmatch(slug) is None:
        raise InvalidInput(f"invalid slug {slug!r}: {SLUG_PATTERN}, at most {SLUG_MAX_LENGTH} characters", field="slug")
    return slug


_INT64 = range(-(2**63), 2**63)


def check_storable(value: Any, field: str, *, depth: int = 0) -> None:
    """``InvalidInput`` naming the offending part of ``value`` unless every backend stores all of it exactly.

    Input the wire schema accepts may still be something a store cannot keep: PostgreSQL text and JSON cannot hold
    U+0000, msgpack (Redis) has no integers beyond 64 bits, JSON has no NaN or infinity (Litestar's lenient
    decoding turns the string ``"nan"`` into one), and a time whose offset takes it past year 9999 (or before year 1)
    has no UTC equivalent. Nesting deeper than :data:`MAX_DEPTH` is refused too. Refusing them here makes every
    backend answer 422 alike, before anything is written, instead of a 500 on one of them.
    """
    if depth > MAX_DEPTH:
        raise InvalidInput(f"{field or 'the body'} is nested deeper than {MAX_DEPTH} levels", field=field)
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput(f"{field} may not contain the NUL character (U+0000)", field=field)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if value not in _INT64:
            raise InvalidInput(f"{field} must be an integer within 64 bits", field=field)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{field} must be a finite number", field=field)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_storable(item, f"{field}[{index}]", depth=depth + 1)
    elif isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            check_storable(getattr(value, name), f"{field}.{name}" if field else name, depth=depth + 1)
    elif isinstance(value, datetime):
        try:
            if value.tzinfo is not None:  # a naive time is taken to be UTC already
                value.astimezone(UTC)
        except OverflowError:
            raise InvalidInput(f"{field} is out of range once converted to UTC", field=field) from None
    elif isinstance(value, (dict, Mapping)):  # dict first: the ABC's check is slow
        for key, item in value.items():
            check_storable(key, field, depth=depth + 1)
            check_storable(item, f"{field}.{key}" if field else str(key), depth=depth + 1)
