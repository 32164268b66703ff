"""Input rules that belong to the domain, whichever dialect the input came through."""

from __future__ import annotations

import re

from litestar_registry.core.errors import InvalidInput

__all__ = ("MAX_ITEMS", "SLUG_MAX_LENGTH", "SLUG_PATTERN", "check_slug")

SLUG_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
"""A lowercase letter, then lowercase letters and digits, with single hyphens between (seeds 000 and 004)."""
SLUG_MAX_LENGTH = 63
MAX_ITEMS = 100
"""Most entries in one list or map of a request: bounds what one registration can make the store hold."""

_SLUG = re.compile(SLUG_PATTERN)


def check_slug(slug: str) -> str:
    """Return ``slug`` if it is valid; ``InvalidInput`` otherwise.

    ``fullmatch`` matters: ``re.search`` with ``$`` accepts a trailing newline, which a slug must not have.
    """
    if len(slug) > SLUG_MAX_LENGTH or _SLUG.fullmatch(slug) is None:
        raise InvalidInput(f"invalid slug {slug!r}: {SLUG_PATTERN}, at most {SLUG_MAX_LENGTH} characters", field="slug")
    return slug
