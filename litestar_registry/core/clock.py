"""Time as a dependency: the core never calls ``datetime.now`` itself, so tests drive TTLs exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ("Clock", "ManualClock", "SystemClock", "utc")


def utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime (naive values are taken to be UTC already)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@runtime_checkable
class Clock(Protocol):
    """Something that tells the current time in UTC."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """The current time in UTC."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to: TTL, expiry and sweeps become exact in tests."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = utc(start) if start else datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        """The time this clock was last set to."""
        return self._now

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by ``seconds`` and return the new time."""
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, value: datetime) -> None:
        """Jump to ``value``."""
        self._now = utc(value)
