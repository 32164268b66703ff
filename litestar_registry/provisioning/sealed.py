"""Sealed values: how credentials look wherever they are kept, and how reads hide them (no cryptography needed).

A sealed value is the mapping ``{"$sealed": "<Fernet token>"}`` (see :mod:`.crypto`, which makes and opens them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ("REDACTED", "SEALED_KEY", "is_sealed", "redact")

SEALED_KEY = "$sealed"
REDACTED = "[redacted]"
"""What a read shows instead of a sealed value."""


def is_sealed(value: Any) -> bool:
    """Whether ``value`` is a sealed value (``{"$sealed": str}`` and nothing else)."""
    return isinstance(value, Mapping) and len(value) == 1 and isinstance(value.get(SEALED_KEY), str)


def redact(value: Any) -> Any:
    """``value`` with every sealed value, at any depth, replaced by :data:`REDACTED` (what reads return)."""
    if is_sealed(value):
        return REDACTED
    if isinstance(value, Mapping):
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value
