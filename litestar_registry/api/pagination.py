"""Pages: one page-size rule and one ``limit`` parameter for every list, and opaque cursors.

Callers pass back the cursors they were given and never build one.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from litestar.di import Provide
from litestar.params import QueryParameter

from litestar_registry.api.schemas import UUID
from litestar_registry.core.errors import InvalidInput
from litestar_registry.core.validation import check_slug

__all__ = (
    "decode_cursor",
    "decode_position_cursor",
    "decode_workflow_cursor",
    "encode_cursor",
    "encode_position_cursor",
    "encode_workflow_cursor",
    "page_size",
    "page_size_dependency",
)

_POSITION = "p:"
"""Prefix of position cursors: a slug starts with a letter and has no colon, so neither kind passes for the other."""
_WORKFLOW = "w:"
"""Prefix of workflow cursors (they resume after a workflow id)."""


def page_size(limit: int | None, *, default: int, maximum: int) -> int:
    """How many items a page holds: ``limit`` when given, else ``default``; never more than ``maximum``."""
    return min(limit or default, maximum)


def page_size_dependency(*, default: int, maximum: int) -> Provide:
    """The ``registry_page_size`` dependency of every list: the page size from the ``limit`` query parameter.

    The parameter's bounds come from the configuration, so a handler's signature cannot carry them: the
    dependency's own signature does, and the OpenAPI document of every list that uses it shows them.
    """

    def provide_page_size(limit: int | None = None) -> int:
        return page_size(limit, default=default, maximum=maximum)

    provide_page_size.__annotations__ = {
        "limit": Annotated[
            int | None, QueryParameter(ge=1, le=maximum, description=f"Page size; {default} when not given.")
        ],
        "return": int,
    }
    return Provide(provide_page_size, sync_to_thread=False)


def encode_cursor(after: str | None) -> str | None:
    """The cursor that resumes after slug ``after``."""
    return _encode_text(after) if after is not None else None


def decode_cursor(cursor: str | None) -> str | None:
    """The slug a cursor resumes after; ``InvalidInput`` for anything we did not hand out."""
    if not cursor:
        return None
    try:
        return check_slug(_decode_text(cursor))
    except (binascii.Error, UnicodeDecodeError, ValueError, InvalidInput):
        raise InvalidInput("cursor is not one this registry handed out", field="cursor") from None


def encode_position_cursor(after: int | None) -> str | None:
    """The cursor that resumes after position ``after`` of an ordered list (a version history)."""
    return _encode_text(f"{_POSITION}{after}") if after is not None else None


def decode_position_cursor(cursor: str | None) -> int | None:
    """The position a cursor resumes after; ``InvalidInput`` for anything we did not hand out (a slug cursor too)."""
    if not cursor:
        return None
    try:
        text = _decode_text(cursor)
        prefix, digits = text[: len(_POSITION)], text[len(_POSITION) :]
        if prefix != _POSITION or not (digits.isascii() and digits.isdigit() and len(digits) <= 18):
            raise ValueError(cursor)
        return int(digits)  # 18 digits: below 2**63, what every store can compare with
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("cursor is not one this registry handed out", field="cursor") from None


def encode_workflow_cursor(after: str | None) -> str | None:
    """The cursor that resumes a workflow list after workflow ``after`` (lists run newest first)."""
    return _encode_text(f"{_WORKFLOW}{after}") if after is not None else None


def decode_workflow_cursor(cursor: str | None) -> str | None:
    """The workflow id a cursor resumes after; ``InvalidInput`` for anything we did not hand out."""
    if not cursor:
        return None
    try:
        text = _decode_text(cursor)
        prefix, workflow_id = text[: len(_WORKFLOW)], text[len(_WORKFLOW) :]
        if prefix != _WORKFLOW or UUID.fullmatch(workflow_id) is None:
            raise ValueError(cursor)
        return workflow_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("cursor is not one this registry handed out", field="cursor") from None


def _encode_text(text: str) -> str:
    """``text`` as an opaque cursor: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_text(cursor: str) -> str:
    padded = cursor + "=" * (-len(cursor) % 4)
    return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
