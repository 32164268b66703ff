"""The announcing plugin end to end: the example registry and the announced example app as real processes.

Short TTLs keep the file fast; every bound below is the rule's own (one TTL, one interval, a third of the TTL) plus
a stated allowance for a loaded machine, and what can be decided from the processes' own records (the registry's
``registered_at``, the proxy's request log) is checked there rather than by timing.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.client.conftest import ADMIN, Launcher, Process, poll

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("announce-fleet")]  # one fleet of processes a run

LOAD_ALLOWANCE = 1.0
"""Seconds added to an upper bound for a loaded machine (process scheduling, polling every 50 ms)."""


@dataclass
class Fleet:
    """Every process of this file, started at once: each one spends seconds importing Litestar, so they do it in
    parallel rather than one test after another. Each test has its own app (and slug) and reads the state it
    starts from (``registered_at``, the registrations count) at its start, so the order of the tests is free."""

    registry: Process
    """Shared (``shared_registry``): it keeps deregistered records, so a deregistration shows as such."""
    stays: Process
    killed: Process
    proxy: Process
    flaky: Process
    """Talks to ``registry`` through ``proxy``."""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, spawned_registry: Process) -> Iterator[Fleet]:
    launch = Launcher(tmp_path_factory.mktemp("fleet"))
    try:
        registry = spawned_registry
        proxy = launch.proxy(registry.base_url, wait=False)
        fleet = Fleet(
            registry=registry,
            stays=launch.announced(registry.base_url, wait=False, slug="announced-stays", ttl_seconds="1"),
            killed=launch.announced(
                registry.base_url, wait=False, slug="announced-killed", ttl_seconds="1", dialect="ttl"
            ),
            proxy=proxy,
            flaky=launch.announced(
                proxy.base_url, wait=False, slug="announced-flaky", ttl_seconds="3", backoff_base_seconds="0.25"
            ),
        )
        for process in [registry, *launch.processes]:
            process.wait_ready()
        yield fleet
    finally:
        launch.cleanup()


def service(registry: Process, slug: str) -> dict[str, Any] | None:
    """The service as the registry dialect shows it; ``None`` when the registry does not know it."""
    answer = httpx.get(f"{registry.base_url}/api/v1/registry/services/{slug}", headers=ADMIN, timeout=5)
    if answer.status_code == 404:
        return None
    answer.raise_for_status()
    data: dict[str, Any] = answer.json()["data"]
    return data


def ttl_entry(registry: Process, slug: str) -> dict[str, Any] | None:
    """The service as the TTL dialect shows it (live services only)."""
    answer = httpx.get(f"{registry.base_url}/v2/services/{slug}", timeout=5)
    if answer.status_code == 404:
        return None
    answer.raise_for_status()
    entry: dict[str, Any] = answer.json()
    return entry


def announcement(app: Process) -> dict[str, Any]:
    state: dict[str, Any] = httpx.get(f"{app.base_url}/announcement", timeout=5).json()
    return state


def test_it_appears_stays_ten_ttls_and_a_graceful_shutdown_removes_it_at_once(fleet: Fleet) -> None:
    registry, app, slug = fleet.registry, fleet.stays, "announced-stays"
    first = poll(lambda: service(registry, slug), within=5)
    assert (first["ttl_seconds"], first["base_url"]) == (1.0, app.base_url)
    assert first["endpoints"][0]["url"] == f"{app.base_url}/hello"
    registrations = announcement(app)["registrations"]

    statuses = []
    until = time.monotonic() + 10 * 1.0
    while time.monotonic() < until:
        shown = service(registry, slug)
        assert shown is not None
        assert shown["registered_at"] == first["registered_at"]  # never expired and registered afresh
        statuses.append(shown["status"])
        time.sleep(0.2)
    assert set(statuses) <= {"active", "degraded"}
    assert statuses.count("active") >= 0.9 * len(statuses)  # a late heartbeat may show on a loaded machine
    health = service(registry, slug)["health"]  # type: ignore[index]
    assert (health["status"], health["checks"]) == ("healthy", {"self": "healthy"})
    assert announcement(app)["registrations"] == registrations  # never needed to register again

    stopping = time.monotonic()
    assert app.stop()
    stopped = time.monotonic() - stopping
    shown = service(registry, slug)
    assert shown is not None
    assert shown["status"] == "deregistered"  # removed by the shutdown itself (kept as such), not left to expire
    assert stopped < 5, f"graceful shutdown took {stopped:.2f} s"
    print(f"graceful shutdown, deregistration included: {stopped:.2f} s")


def test_a_killed_service_expires_after_its_ttl(fleet: Fleet) -> None:
    ttl, slug, registry, app = 1.0, "announced-killed", fleet.registry, fleet.killed
    poll(lambda: ttl_entry(registry, slug), within=5)

    app.kill()
    last = ttl_entry(registry, slug)  # what its last ping made of it
    assert last is not None, "gone at once: a SIGKILL must leave it to expire"
    expires_at = datetime.fromisoformat(last["expires_at"])
    assert expires_at - datetime.fromisoformat(last["last_ping_at"]) == timedelta(seconds=ttl)
    poll(lambda: ttl_entry(registry, slug) is None, within=ttl + LOAD_ALLOWANCE)
    gone_at = datetime.now(UTC)

    late = (gone_at - expires_at).total_seconds()
    assert late >= -0.05, f"gone {-late:.2f} s before its TTL ran out"  # not removed early: nobody deregistered it
    assert late <= LOAD_ALLOWANCE, f"still there {late:.2f} s after its TTL ran out"
    print(f"SIGKILL -> gone from the TTL dialect {late:+.2f} s after its last ping's TTL ran out (TTL {ttl} s)")


def test_a_registry_answering_503_makes_it_back_off_then_recover(fleet: Fleet) -> None:
    ttl, slug, registry, proxy, app = 3.0, "announced-flaky", fleet.registry, fleet.proxy, fleet.flaky
    cap = ttl / 3
    first = poll(lambda: service(registry, slug), within=5)
    poll(lambda: answered_after(proxy, 0), within=cap + LOAD_ALLOWANCE)
    registrations = announcement(app)["registrations"]

    # Without Retry-After: full jitter under a ceiling doubling from 0.25 s up to a third of the TTL.
    window = failing(proxy, seconds=2.5)
    tries = heartbeats(proxy, window)
    gaps = [b - a for a, b in itertools.pairwise(tries)]
    assert 2 <= len(tries) <= 12, tries  # kept trying, without hammering (an immediate retry loop makes hundreds)
    assert max(gaps) <= cap + LOAD_ALLOWANCE

    recovered = poll(lambda: answered_after(proxy, window[1]), within=cap + LOAD_ALLOWANCE)
    assert recovered - window[1] <= cap + LOAD_ALLOWANCE
    poll(lambda: announcement(app)["state"] == "healthy", within=cap + LOAD_ALLOWANCE)

    # With Retry-After: 0.8 s, never sooner than that (and still within a third of the TTL).
    window = failing(proxy, seconds=2.0, retry_after="0.8")
    tries_after = heartbeats(proxy, window)
    gaps_after = [b - a for a, b in itertools.pairwise(tries_after)]
    assert 1 <= len(tries_after) <= 3, tries_after
    assert all(gap >= 0.79 for gap in gaps_after), gaps_after  # (10 ms for clock resolution)
    poll(lambda: answered_after(proxy, window[1]), within=cap + LOAD_ALLOWANCE)
    poll(lambda: announcement(app)["state"] == "healthy", within=cap + LOAD_ALLOWANCE)

    # The outages were shorter than the TTL: the registration outlived them, nothing had to register again.
    assert service(registry, slug)["registered_at"] == first["registered_at"]  # type: ignore[index]
    assert announcement(app)["registrations"] == registrations
    print(
        f"503 for 2.5 s: {len(tries)} heartbeats, gaps {[round(gap, 2) for gap in gaps]}; "
        f"503 + Retry-After 0.8 for 2 s: {len(tries_after)}, gaps {[round(gap, 2) for gap in gaps_after]}"
    )


def test_a_registry_that_restarts_empty_has_it_back_within_one_ttl_plus_one_interval(fleet: Fleet) -> None:
    """The shared registry restarts: every app of the fleet registers again, this one is watched."""
    ttl, slug, registry, app = 3.0, "announced-flaky", fleet.registry, fleet.flaky
    poll(lambda: service(registry, slug), within=5)
    registrations = announcement(app)["registrations"]

    assert registry.stop()
    serving_again = registry.start()  # same port, a new process: the memory store starts empty
    poll(lambda: service(registry, slug), within=ttl + ttl / 3 + LOAD_ALLOWANCE)
    back_after = time.monotonic() - serving_again

    assert back_after <= ttl + ttl / 3, f"back after {back_after:.2f} s"
    assert announcement(app)["registrations"] == registrations + 1
    print(f"registry serving again -> service back: {back_after:.2f} s (bound {ttl + ttl / 3:.2f} s)")


def proxy_log(proxy: Process) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = httpx.get(f"{proxy.base_url}/__proxy/log", timeout=5).json()
    return log


def heartbeats(proxy: Process, window: tuple[float, float] | None = None) -> list[float]:
    """When the app's heartbeats reached the proxy, within ``window``."""
    return [
        entry["at"]
        for entry in proxy_log(proxy)
        if entry["path"].endswith("/heartbeat") and (window is None or window[0] <= entry["at"] <= window[1])
    ]


def failing(proxy: Process, *, seconds: float, retry_after: str | None = None) -> tuple[float, float]:
    """Make the proxy answer 503 for ``seconds``; returns the window (monotonic, the proxy's clock too)."""
    params = {"retry_after": retry_after} if retry_after else {}
    httpx.post(f"{proxy.base_url}/__proxy/fail", params=params, timeout=5).raise_for_status()
    started = time.monotonic()
    time.sleep(seconds)
    httpx.post(f"{proxy.base_url}/__proxy/pass", timeout=5).raise_for_status()
    return started, time.monotonic()


def answered_after(proxy: Process, moment: float) -> float | None:
    """When the first heartbeat after ``moment`` was answered 200."""
    return next(
        (
            entry["at"]
            for entry in proxy_log(proxy)
            if entry["at"] > moment and entry["path"].endswith("/heartbeat") and entry["status"] == 200
        ),
        None,
    )
