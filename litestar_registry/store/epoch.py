"""Instants and durations as integer microseconds: what the stores compute with inside the database or server.

``touch`` adds a record's TTL to the contact time in one statement or script, on every backend. Integers make that sum
exact and equal to Python's datetime arithmetic, where float seconds drift by a microsecond for fractional TTLs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ("from_micros", "micros", "to_micros")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(at: datetime) -> int:
    """``at`` (aware) as microseconds since the Unix epoch."""
    return (at - _EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    """The aware UTC instant ``value`` microseconds after the Unix epoch."""
    return _EPOCH + timedelta(microseconds=value)


def micros(duration: timedelta) -> int:
    """``duration`` in whole microseconds, rounded as ``timedelta`` itself rounds."""
    return duration // _MICROSECOND
