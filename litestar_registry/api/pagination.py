"""Opaque cursors: callers pass back what they were given and never build one."""

from __future__ import annotations

import base64
import binascii

from litestar_registry.core.errors import InvalidInput
from litestar_registry.core.validation import check_slug

__all__ = ("decode_cursor", "encode_cursor")


def encode_cursor(after: str | None) -> str | None:
    """The cursor that resumes after slug ``after``."""
    return base64.urlsafe_b64encode(after.encode()).decode().rstrip("=") if after is not None else None


def decode_cursor(cursor: str | None) -> str | None:
    """The slug a cursor resumes after; ``InvalidInput`` for anything we did not hand out."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return check_slug(base64.b64decode(padded, altchars=b"-_", validate=True).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError, InvalidInput):
        raise InvalidInput("cursor is not one this registry handed out", field="cursor") from None
