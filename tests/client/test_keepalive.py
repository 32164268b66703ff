"""The keepalive's timing rules, exactly: an injected clock, sleep and randomness, a scripted target, no waiting."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from litestar_registry.client import (
    Health,
    HealthStatus,
    KeepAlive,
    KeepAliveEvent,
    KeepAliveState,
    Registration,
    RegistryClient,
    RegistryDialectTarget,
    RegistryHTTPError,
    RegistryUnavailable,
    UnexpectedResponse,
)

S = KeepAliveState


class Done(BaseException):
    """Ends a scripted run: a BaseException, so that the keepalive's own handling does not catch it."""


class FakeTime:
    """A monotonic clock that only sleep moves; the run ends after ``limit`` sleeps."""

    def __init__(self, limit: int) -> None:
        self.now = 100.0
        self.limit = limit
        self.log: list[tuple[str, float]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.log.append(("sleep", delay))
        if sum(1 for kind, _ in self.log if kind == "sleep") > self.limit:
            raise Done
        self.now += delay


class Script:
    """A target that answers from a script: each item is a value (success), an exception, or a callable of time."""

    def __init__(self, time_: FakeTime, outcomes: Iterable[Any], *, ttl: float = 9.0, latency: float = 0.0) -> None:
        self.time = time_
        self.outcomes: Iterator[Any] = iter(outcomes)
        self.ttl = ttl
        self.latency = latency
        self.deregistered = 0

    async def _answer(self, kind: str) -> None:
        self.time.log.append((kind, self.time.now))
        self.time.now += self.latency
        outcome = next(self.outcomes, None)
        if isinstance(outcome, BaseException):
            raise outcome

    async def register(self) -> float:
        await self._answer("register")
        return self.ttl

    async def contact(self) -> None:
        await self._answer("contact")

    async def deregister(self) -> None:
        self.deregistered += 1


def status_error(status: int, retry_after: float | None = None) -> RegistryHTTPError:
    return RegistryHTTPError(status, "scripted", retry_after=retry_after)


def fixed(*values: float) -> Any:
    """A ``random`` that returns ``values`` in turn, then the last one forever."""
    it = itertools.chain(values, itertools.repeat(values[-1]))
    return lambda: next(it)


async def drive(keepalive: KeepAlive) -> None:
    with pytest.raises(Done):
        await keepalive.run()


def sleeps(time_: FakeTime) -> list[float]:
    return [round(value, 6) for kind, value in time_.log if kind == "sleep"]


def kinds(time_: FakeTime) -> list[str]:
    return [kind for kind, _ in time_.log]


async def test_contact_every_third_of_the_granted_ttl_within_ten_percent() -> None:
    time_ = FakeTime(limit=3)
    # The service asks for 30 s; the registry grants 9 s, and that is what counts.
    target = Script(time_, [], ttl=9.0)
    keepalive = KeepAlive(target, ttl_seconds=30, clock=time_.clock, sleep=time_.sleep, random=fixed(0.0, 0.5, 0.9999))
    await drive(keepalive)
    assert kinds(time_) == ["register", "sleep", "contact", "sleep", "contact", "sleep", "contact", "sleep"]
    assert sleeps(time_)[:3] == [2.7, 3.0, round(3 * 1.09998, 6)]  # 3 s x [0.9, 1.1)
    assert keepalive.ttl_seconds == 9.0
    assert (keepalive.state, keepalive.registrations, keepalive.failures) == (S.HEALTHY, 1, 0)


async def test_the_interval_counts_from_the_start_of_the_previous_contact() -> None:
    time_ = FakeTime(limit=2)
    target = Script(time_, [], ttl=3.0, latency=0.25)
    keepalive = KeepAlive(target, clock=time_.clock, sleep=time_.sleep, random=fixed(0.5))
    await drive(keepalive)
    assert sleeps(time_)[:2] == [0.75, 0.75]  # 1 s interval minus the 0.25 s each request took
    starts = [at for kind, at in time_.log if kind in {"register", "contact"}]
    assert [round(b - a, 6) for a, b in itertools.pairwise(starts)] == [1.0, 1.0]


@pytest.mark.parametrize("status", [404, 410])
async def test_a_service_the_registry_forgot_registers_again_at_once(status: int) -> None:
    time_ = FakeTime(limit=3)
    target = Script(time_, [None, status_error(status), None, None], ttl=3.0)
    events: list[KeepAliveEvent] = []
    keepalive = KeepAlive(target, clock=time_.clock, sleep=time_.sleep, random=fixed(0.5), on_state=events.append)
    await drive(keepalive)
    assert kinds(time_)[:6] == ["register", "sleep", "contact", "register", "sleep", "contact"]
    register_again = time_.log[3][1]
    assert register_again == time_.log[2][1]  # no wait between the 404 and the registration
    assert [event.state for event in events] == [S.HEALTHY, S.REREGISTERED, S.HEALTHY]
    assert events[1].registrations == 2
    assert keepalive.failures == 0


async def test_network_errors_and_5xx_back_off_with_full_jitter_capped_at_a_third_of_the_ttl() -> None:
    time_ = FakeTime(limit=8)
    failures = [RegistryUnavailable("down"), status_error(502), status_error(503), UnexpectedResponse("x", status=200)]
    target = Script(time_, [None, *failures, status_error(500), status_error(504), None], ttl=9.0)
    keepalive = KeepAlive(
        target, clock=time_.clock, sleep=time_.sleep, random=fixed(0.5, *[0.9999] * 6, 0.5), backoff_base_seconds=0.5
    )
    await drive(keepalive)
    # After the first interval (3 s), the ceilings double from 0.5 s: 0.5, 1, 2, then the cap, 3 s (a third of 9 s);
    # full jitter draws just under each ceiling here.
    assert sleeps(time_)[:7] == [3.0, 0.49995, 0.9999, 1.9998, 2.9997, 2.9997, 2.9997]
    assert keepalive.state is S.HEALTHY
    assert sleeps(time_)[7] == 3.0  # healthy again: back to the normal interval


async def test_full_jitter_can_retry_at_once_and_never_waits_past_the_ceiling() -> None:
    keepalive = KeepAlive(Script(FakeTime(0), []), ttl_seconds=9.0, random=fixed(0.0))
    assert [keepalive.backoff(n) for n in range(1, 6)] == [0.0] * 5
    keepalive = KeepAlive(Script(FakeTime(0), []), ttl_seconds=9.0, random=fixed(0.99))
    assert [round(keepalive.backoff(n), 4) for n in range(1, 7)] == [0.495, 0.99, 1.98, 2.97, 2.97, 2.97]


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(2.0, 2.0), (0.1, 0.25), (60.0, 3.0)],  # a floor; the jitter (0.25 here) when larger; capped at TTL / 3
)
async def test_retry_after_is_a_floor_capped_at_a_third_of_the_ttl(retry_after: float, expected: float) -> None:
    time_ = FakeTime(limit=2)
    target = Script(time_, [None, status_error(503, retry_after=retry_after), None], ttl=9.0)
    keepalive = KeepAlive(target, clock=time_.clock, sleep=time_.sleep, random=fixed(0.5))
    await drive(keepalive)
    assert sleeps(time_)[1] == expected


async def test_429_is_retried_like_a_5xx() -> None:
    time_ = FakeTime(limit=2)
    target = Script(time_, [None, status_error(429, retry_after=1.5), None], ttl=9.0)
    keepalive = KeepAlive(target, clock=time_.clock, sleep=time_.sleep, random=fixed(0.5))
    await drive(keepalive)
    assert sleeps(time_)[:2] == [3.0, 1.5]


async def test_a_refusal_is_logged_and_tried_again_at_the_normal_interval(caplog: pytest.LogCaptureFixture) -> None:
    time_ = FakeTime(limit=4)
    target = Script(time_, [status_error(401), status_error(401), status_error(401), None], ttl=6.0)
    events: list[KeepAliveEvent] = []
    keepalive = KeepAlive(
        target, ttl_seconds=6.0, clock=time_.clock, sleep=time_.sleep, random=fixed(0.5), on_state=events.append
    )
    with caplog.at_level(logging.DEBUG, "litestar_registry.client"):
        await drive(keepalive)
    assert kinds(time_)[:7] == ["register", "sleep", "register", "sleep", "register", "sleep", "register"]
    assert sleeps(time_)[:3] == [2.0, 2.0, 2.0]
    assert [event.state for event in events] == [S.RETRYING, S.HEALTHY]  # reported on change, not on every attempt
    assert events[0].failures == 1
    assert isinstance(events[0].error, RegistryHTTPError)
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1  # once, not at every attempt
    assert "refused" in errors[0].getMessage()


async def test_success_resets_the_backoff() -> None:
    time_ = FakeTime(limit=6)
    down = RegistryUnavailable("down")
    target = Script(time_, [None, down, down, None, down, None], ttl=9.0)
    keepalive = KeepAlive(target, clock=time_.clock, sleep=time_.sleep, random=fixed(0.5))
    await drive(keepalive)
    assert sleeps(time_)[:6] == [3.0, 0.25, 0.5, 3.0, 0.25, 3.0]


async def test_the_first_registration_backs_off_under_the_configured_ttl_until_the_registry_answers() -> None:
    time_ = FakeTime(limit=4)
    down = RegistryUnavailable("down")
    target = Script(time_, [down, down, down, None], ttl=1.5)
    keepalive = KeepAlive(target, ttl_seconds=3.0, clock=time_.clock, sleep=time_.sleep, random=fixed(0.9999))
    await drive(keepalive)
    assert sleeps(time_)[:4] == [0.49995, 0.9999, 0.9999, round(0.5 * 1.09998, 6)]  # cap 1 s; then the granted TTL


async def test_unexpected_errors_and_a_failing_callback_never_stop_it(caplog: pytest.LogCaptureFixture) -> None:
    time_ = FakeTime(limit=3)
    target = Script(time_, [None, RuntimeError("bug in a transport"), None, None], ttl=3.0)

    def broken(event: KeepAliveEvent) -> None:
        raise ValueError("callback bug")

    keepalive = KeepAlive(target, clock=time_.clock, sleep=time_.sleep, random=fixed(0.5), on_state=broken)
    with caplog.at_level(logging.ERROR, "litestar_registry.client"):
        await drive(keepalive)
    assert kinds(time_)[:6] == ["register", "sleep", "contact", "sleep", "contact", "sleep"]
    assert keepalive.state is S.HEALTHY
    assert any("state callback failed" in record.getMessage() for record in caplog.records)


async def test_an_async_callback_is_awaited_and_ready_comes_first() -> None:
    time_ = FakeTime(limit=1)
    target = Script(time_, [], ttl=3.0)
    seen: list[str] = []

    async def ready() -> None:
        seen.append("ready")

    async def on_state(event: KeepAliveEvent) -> None:
        seen.append(event.state.value)

    keepalive = KeepAlive(
        target, clock=time_.clock, sleep=time_.sleep, random=fixed(0.5), ready=ready, on_state=on_state
    )
    await drive(keepalive)
    assert seen == ["ready", "healthy"]
    assert kinds(time_)[0] == "register"


async def test_a_failing_readiness_check_still_registers() -> None:
    time_ = FakeTime(limit=1)
    target = Script(time_, [], ttl=3.0)

    async def ready() -> None:
        raise OSError("probe failed")

    await drive(KeepAlive(target, clock=time_.clock, sleep=time_.sleep, random=fixed(0.5), ready=ready))
    assert kinds(time_)[0] == "register"


class Hanging:
    """A target whose contact never answers."""

    def __init__(self) -> None:
        self.contacting = asyncio.Event()
        self.deregistered = 0

    async def register(self) -> float:
        return 1.5

    async def contact(self) -> None:
        self.contacting.set()
        await asyncio.Event().wait()

    async def deregister(self) -> None:
        self.deregistered += 1


async def test_an_attempt_that_hangs_gives_up_and_backs_off() -> None:
    waits: list[float] = []

    async def sleep(delay: float) -> None:
        waits.append(delay)
        if len(waits) > 2:
            raise Done

    target = Hanging()
    keepalive = KeepAlive(target, sleep=sleep, random=fixed(0.5))
    started = time.monotonic()
    with pytest.raises(Done):
        await keepalive.run()
    assert keepalive.attempt_timeout() == 1.0  # half of 1.5 s, but at least one second
    assert 1.9 <= time.monotonic() - started < 10  # two attempts of one second each
    assert (keepalive.state, keepalive.failures) == (S.RETRYING, 2)
    assert waits[1:] == [0.25, 0.25]  # half of min(cap 0.5 s, 0.5 s, 1 s)


async def test_stop_is_prompt_and_deregisters_once_registered() -> None:
    target = Hanging()
    keepalive = KeepAlive(target, random=fixed(0.5))
    keepalive.start()
    async with asyncio.timeout(5):
        await target.contacting.wait()  # registered, now inside a contact that never answers
    started = time.monotonic()
    await keepalive.stop()
    assert time.monotonic() - started < 0.5
    assert (keepalive.state, target.deregistered) == (S.STOPPED, 1)


async def test_stop_before_any_registration_does_not_deregister_and_never_raises() -> None:
    class Failing(Hanging):
        async def register(self) -> float:
            raise RegistryUnavailable("down")

        async def deregister(self) -> None:
            raise RegistryUnavailable("still down")

    target = Failing()
    async with KeepAlive(target, backoff_base_seconds=0.01) as keepalive:
        await asyncio.sleep(0.05)
        assert keepalive.state is S.RETRYING
    assert (keepalive.state, target.deregistered) == (S.STOPPED, 0)

    target = Failing()
    keepalive = KeepAlive(target)
    keepalive.registrations = 1  # as if registered before the registry went away
    await keepalive.stop()  # the failed deregistration is logged, not raised
    assert keepalive.state is S.STOPPED


async def test_a_sync_health_check_runs_off_the_event_loop() -> None:
    """A slow host health check (a blocking call) must not stall the loop that serves the app."""
    seen: dict[str, Any] = {}

    def slow_health() -> Health:
        seen["thread"] = threading.current_thread() is not threading.main_thread()
        time.sleep(0.3)
        return Health(status=HealthStatus.DEGRADED, checks={"db": HealthStatus.DEGRADED})

    async with RegistryClient("http://unused") as client:
        target = RegistryDialectTarget(client, Registration(slug="svc", name="Svc", version="2.0", ttl_seconds=9))
        target.health = slow_health
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        report = await target.health_report()
        task.cancel()
    assert seen["thread"] is True
    assert ticks >= 10  # the loop kept running during the 0.3 s check
    assert report == Health(status=HealthStatus.DEGRADED, checks={"db": HealthStatus.DEGRADED})


async def test_a_failing_or_hanging_health_check_reports_unhealthy() -> None:
    async with RegistryClient("http://unused") as client:
        target = RegistryDialectTarget(client, Registration(slug="svc", name="Svc", version="1", ttl_seconds=1.5))

        def broken() -> Health:
            raise RuntimeError("db down")

        target.health = broken
        report = await target.health_report()
        assert report.status is HealthStatus.UNHEALTHY
        assert "db down" in (report.message or "")

        async def hangs() -> Health:
            await asyncio.Event().wait()
            raise AssertionError

        target.health = hangs
        report = await target.health_report()  # gives up after a sixth of the TTL
        assert report.status is HealthStatus.UNHEALTHY
        assert "in time" in (report.message or "")
