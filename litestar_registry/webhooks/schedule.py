"""When a delivery is attempted: the retry schedule, its jitter, and the subscriber's ``Retry-After``.

The schedule is a list of delays: the first comes before the first attempt (0: at once), each next one after an
attempt failed, so a schedule of eight delays makes eight attempts. Jitter spreads retries that failed together: each
delay is scaled by a factor within ``1 ± jitter``, drawn from a hash of the delivery, its run and the attempt, so it is
the same however often the delivery's workflow is replayed after a crash, and differs from one delivery to the next.
A ``Retry-After`` answer (seconds, or an HTTP date) is a minimum for the next delay, capped at the schedule's longest
delay so that a subscriber cannot park a delivery for days; it never adds attempts.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from litestar_registry.core.clock import utc

__all__ = ("DEFAULT_SCHEDULE", "RetrySchedule", "parse_retry_after", "schedule_problem")

DEFAULT_SCHEDULE: tuple[float, ...] = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
"""0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: eight attempts over a day and a few hours."""
MAX_ATTEMPTS = 50


def schedule_problem(delays: Sequence[float], jitter: float) -> str | None:
    """What is wrong with a schedule and a jitter, as ``expected ...``; ``None`` when they are fine."""
    if not delays or len(delays) > MAX_ATTEMPTS:
        return f"expected 1 to {MAX_ATTEMPTS} delays in seconds"
    if any(isinstance(d, bool) or not isinstance(d, int | float) or not math.isfinite(d) or d < 0 for d in delays):
        return "expected delays of finite seconds >= 0"
    if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0 <= jitter < 1:
        return "expected a jitter from 0 to below 1"
    return None


@dataclass(frozen=True, kw_only=True)
class RetrySchedule:
    """The delays between attempts, their jitter, and how ``Retry-After`` counts."""

    delays: tuple[float, ...] = DEFAULT_SCHEDULE
    jitter: float = 0.1
    """Each delay is scaled by a factor in ``[1 - jitter, 1 + jitter)``; 0 keeps the delays exact."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "delays", tuple(float(delay) for delay in self.delays))
        if (problem := schedule_problem(self.delays, self.jitter)) is not None:
            raise ValueError(problem)

    @property
    def attempts(self) -> int:
        """How many attempts a run makes at most."""
        return len(self.delays)

    @property
    def retry_after_cap(self) -> float:
        """The longest wait a ``Retry-After`` can ask for: the schedule's longest delay."""
        return max(self.delays)

    def delay_before(self, attempt: int, *, key: str) -> float:
        """The wait before attempt ``attempt`` (1-based) of the delivery run ``key``, jitter applied."""
        base = self.delays[attempt - 1]
        if base == 0 or self.jitter == 0:
            return base
        digest = hashlib.sha256(f"{key}#{attempt}".encode()).digest()
        fraction = int.from_bytes(digest[:8], "big") / 2**64  # in [0, 1)
        return base * (1 + self.jitter * (2 * fraction - 1))

    def next_delay(self, attempt: int, *, key: str, retry_after: float | None = None) -> float | None:
        """The wait after attempt ``attempt`` failed, before the next; ``None`` when it was the last.

        ``retry_after`` (seconds the subscriber asked for) raises the wait to at least that much, up to
        :attr:`retry_after_cap`.
        """
        if attempt >= self.attempts:
            return None
        delay = self.delay_before(attempt + 1, key=key)
        if retry_after is not None and retry_after > delay:
            delay = max(delay, min(retry_after, self.retry_after_cap))
        return delay


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """The seconds a ``Retry-After`` header asks for (delay-seconds, or an HTTP date after ``now``).

    ``None`` if absent or unreadable; a date in the past asks for no wait (0).
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(min(int(text), 10**9))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    return max(0.0, (utc(when) - utc(now)).total_seconds())
