"""``KeepAlive``: a background task that registers a service and keeps it registered, whatever the registry does.

The timing rules (``ttl`` is what the registry granted at the last registration):

- contact (heartbeat or ping) every ``ttl / 3``, times a random factor in ``[1 - jitter, 1 + jitter]``, counted from
  the start of the previous contact;
- 404 or 410 on contact: the registry forgot the service (it expired, or lost its state): register again at once;
- a network error, a timeout, a 5xx or a 429: retry after a full-jitter backoff, ``uniform(0, min(ttl / 3, base *
  2 ** (failures - 1)))``, and never sooner than ``Retry-After`` when the registry sent one (itself capped at
  ``ttl / 3``, so that a long ``Retry-After`` cannot cost the registration);
- any other refusal (401, 403, 409, 422): logged as an error and tried again at the normal interval;
- each attempt gives up after half the TTL (at least one second).

Clock, sleep and randomness are injected, so that these rules are tested exactly and without waiting.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import random as _random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from litestar_registry.client.errors import RegistryClientError, RegistryHTTPError

__all__ = ("KeepAlive", "KeepAliveEvent", "KeepAliveState", "KeepAliveTarget", "StateCallback")

logger = logging.getLogger("litestar_registry.client")


class KeepAliveState(enum.StrEnum):
    """Where a :class:`KeepAlive` stands."""

    STARTING = "starting"
    """Waiting for the host to serve, or for the first registration to succeed."""
    HEALTHY = "healthy"
    """The last registration or contact succeeded."""
    RETRYING = "retrying"
    """The last attempt failed; another is scheduled."""
    REREGISTERED = "re-registered"
    """The registry had forgotten the service, and it registered again."""
    STOPPED = "stopped"
    """Stopped by its host."""


@dataclass(frozen=True, slots=True)
class KeepAliveEvent:
    """What the state callback receives on each change of state."""

    state: KeepAliveState
    previous: KeepAliveState
    registrations: int
    """Successful registrations so far (the first one included)."""
    failures: int
    """Consecutive failed attempts (0 once one succeeds)."""
    delay: float | None
    """Seconds until the next attempt (``None`` once stopped)."""
    error: BaseException | None = None
    """Why the last attempt failed (``RETRYING``)."""


StateCallback = Callable[[KeepAliveEvent], object]
"""Called on every change of state; it may be a coroutine function. It must be quick: it runs in the keepalive task.
Whatever it raises is logged and ignored."""


class KeepAliveTarget(Protocol):
    """What a keepalive drives: a service in one registry dialect."""

    async def register(self) -> float:
        """Register (or re-register) the service; return the TTL the registry granted, in seconds."""
        ...

    async def contact(self) -> None:
        """Heartbeat or ping; raise an error whose ``gone`` is true when the registry no longer knows the service."""
        ...

    async def deregister(self) -> None:
        """Remove the service from the registry."""
        ...


def _is_gone(exc: BaseException) -> bool:
    return isinstance(exc, RegistryHTTPError) and exc.gone


class KeepAlive:
    """Registers a service, then keeps it registered with contact every third of its TTL (see the module rules).

    It never raises into its host: every failure is logged, reported through ``on_state`` and retried. Run it with
    :meth:`start` and :meth:`stop`, or as an async context manager.

    Args:
        target: The service in its dialect (:class:`~litestar_registry.client.RegistryDialectTarget` or
            :class:`~litestar_registry.client.TtlDialectTarget`).
        ttl_seconds: The TTL assumed until the registry grants one (it caps the backoff of the first registration).
        ready: Awaited once before the first registration (the announcing plugin waits there for its host to serve).
        on_state: Called on every change of state with a :class:`KeepAliveEvent`.
        backoff_base_seconds: The first backoff's ceiling; it doubles with each consecutive failure.
        jitter: The interval's random spread, as a fraction (0.1: ±10 %).
        deregister_on_stop: Whether :meth:`stop` (and leaving the context manager) deregisters by default.
        name: How logs name the service.
        sleep: Waits (``asyncio.sleep``).
        clock: Monotonic seconds (``time.monotonic``).
        random: Uniform numbers in ``[0, 1)`` (``random.random``).
    """

    def __init__(
        self,
        target: KeepAliveTarget,
        *,
        ttl_seconds: float = 30.0,
        ready: Callable[[], Awaitable[object]] | None = None,
        on_state: StateCallback | None = None,
        backoff_base_seconds: float = 0.5,
        jitter: float = 0.1,
        deregister_on_stop: bool = True,
        name: str = "service",
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if ttl_seconds <= 0 or backoff_base_seconds <= 0 or not 0 <= jitter < 1:
            raise ValueError("KeepAlive needs ttl_seconds > 0, backoff_base_seconds > 0 and 0 <= jitter < 1")
        self.target = target
        self.ttl_seconds = ttl_seconds
        """The TTL in force: the one the registry granted at the last registration."""
        self.backoff_base_seconds = backoff_base_seconds
        self.jitter = jitter
        self.deregister_on_stop = deregister_on_stop
        self.name = name
        self.state = KeepAliveState.STARTING
        self.registrations = 0
        self.failures = 0
        self.last_success_at: float | None = None
        """``clock()`` at the last successful registration or contact."""
        self._ready = ready
        self._on_state = on_state
        self._sleep = sleep
        self._clock = clock
        self._random = random
        self._task: asyncio.Task[None] | None = None

    # --- timing rules ------------------------------------------------------------------------------------------

    @property
    def cap(self) -> float:
        """The longest wait between two attempts: a third of the TTL."""
        return self.ttl_seconds / 3

    def interval(self) -> float:
        """The wait between two contacts: a third of the TTL, ± ``jitter``."""
        return self.cap * (1 - self.jitter + 2 * self.jitter * self._random())

    def backoff(self, failures: int, retry_after: float | None = None) -> float:
        """The wait after ``failures`` consecutive failures.

        Full jitter under a ceiling that doubles from ``backoff_base_seconds`` up to a third of the TTL; never less
        than ``retry_after`` (itself capped at a third of the TTL).
        """
        ceiling = min(self.cap, self.backoff_base_seconds * 2.0 ** max(0, failures - 1))
        delay: float = ceiling * self._random()
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap))
        return delay

    def attempt_timeout(self) -> float:
        """How long one attempt may take: half the TTL, at least one second."""
        return max(self.ttl_seconds / 2, 1.0)

    # --- running -----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background task (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"registry-keepalive-{self.name}")

    async def stop(self, *, deregister: bool | None = None, deregister_within: float = 5.0) -> None:
        """Stop the task; then deregister when asked (and when it ever registered), within ``deregister_within`` s.

        A failed deregistration is logged, never raised.
        """
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        if (self.deregister_on_stop if deregister is None else deregister) and self.registrations:
            try:
                async with asyncio.timeout(deregister_within):
                    await self.target.deregister()
                logger.info("%s: deregistered", self.name)
            except Exception as exc:  # a host shutting down must not fail because the registry is away
                level = logging.INFO if _is_gone(exc) else logging.WARNING
                logger.log(level, "%s: not deregistered: %s", self.name, exc)
        await self._set(KeepAliveState.STOPPED, None)

    async def __aenter__(self) -> KeepAlive:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def run(self) -> None:
        """Wait for ``ready``, register, then keep the service alive until cancelled. Never raises but cancellation."""
        try:
            if self._ready is not None:
                try:
                    await self._ready()
                except Exception:
                    logger.exception("%s: the readiness check failed; registering anyway", self.name)
            await self._loop()
        except Exception:  # pragma: no cover - the loop handles every failure; this is the last line of defence
            logger.exception("%s: keepalive stopped by an unexpected error", self.name)

    async def _loop(self) -> None:
        register, delay = True, 0.0
        while True:
            if delay > 0:
                await self._sleep(delay)
            started = self._clock()
            try:
                async with asyncio.timeout(self.attempt_timeout()):
                    if register:
                        granted = await self.target.register()
                    else:
                        await self.target.contact()
            except Exception as exc:
                if not register and _is_gone(exc):
                    logger.warning("%s: the registry no longer knows the service; registering again", self.name)
                    register, delay = True, 0.0
                    continue
                self.failures += 1
                delay = self._after_failure(exc)
                await self._set(KeepAliveState.RETRYING, delay, exc)
                continue
            self.failures = 0
            self.last_success_at = self._clock()
            state = KeepAliveState.HEALTHY
            if register:
                register = False
                self.registrations += 1
                if granted > 0:
                    self.ttl_seconds = float(granted)
                state = KeepAliveState.HEALTHY if self.registrations == 1 else KeepAliveState.REREGISTERED
            delay = max(0.0, self.interval() - (self._clock() - started))
            await self._set(state, delay)

    def _after_failure(self, exc: Exception) -> float:
        """The wait after a failed attempt, logged."""
        if isinstance(exc, TimeoutError):
            exc_text = f"no answer within {self.attempt_timeout():g} s"
            retryable, retry_after = True, None
        elif isinstance(exc, RegistryClientError):
            exc_text = str(exc)
            retryable, retry_after = exc.retryable, getattr(exc, "retry_after", None)
        else:
            exc_text = repr(exc)
            retryable, retry_after = True, None
        if retryable:
            delay = self.backoff(self.failures, retry_after)
            level = logging.WARNING if self.failures == 1 else logging.DEBUG
            logger.log(
                level, "%s: attempt %d failed (%s); retrying in %.2f s", self.name, self.failures, exc_text, delay
            )
        else:
            delay = self.interval()
            level = logging.ERROR if self.failures == 1 else logging.DEBUG
            logger.log(level, "%s: the registry refused (%s); trying again in %.2f s", self.name, exc_text, delay)
        return delay

    async def _set(self, state: KeepAliveState, delay: float | None, error: BaseException | None = None) -> None:
        previous, self.state = self.state, state
        if state is previous and state is not KeepAliveState.REREGISTERED:
            return
        if state is KeepAliveState.HEALTHY and previous is KeepAliveState.STARTING:
            logger.info("%s: registered; contact every %.2f s (TTL %g s)", self.name, self.cap, self.ttl_seconds)
        elif state is KeepAliveState.HEALTHY and previous is KeepAliveState.RETRYING:
            logger.info("%s: healthy again", self.name)
        elif state is KeepAliveState.REREGISTERED:
            logger.info("%s: registered again", self.name)
        if self._on_state is None:
            return
        event = KeepAliveEvent(
            state=state,
            previous=previous,
            registrations=self.registrations,
            failures=self.failures,
            delay=delay,
            error=error,
        )
        try:
            result = self._on_state(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("%s: the state callback failed", self.name)
