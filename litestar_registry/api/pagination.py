"""Opaque cursors: callers pass back what they were given and never build one."""

from __future__ import annotations

import base64
import binascii

from litestar_registry.core.errors import InvalidInput

__all__ = ("decode_cursor", "encode_cursor")


def encode_cursor(after: str | None) -> str | None:
    """The cursor that resumes after slug ``after``."""
    return base64.urlsafe_b64encode(after.encode()).decode().rstrip("=") if after is not None else None


def decode_cursor(cursor: str | None) -> str | None:
    """The slug a cursor resumes after; ``InvalidInput`` for anything we did not hand out."""
    if not cursor:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("cursor is not one this registry handed out", field="cursor") from None
