"""Contact apart from data, through the core, on every backend (real PostgreSQL and Redis servers included).

Re-registrations that each change the version never conflict with the pings of 32 concurrent tasks, and their history
is exact; 200 concurrent heartbeats leave the newest contact stored, never an older one. (The memory store never yields
by itself: the tasks below yield on purpose so that they interleave there too.)
"""

from __future__ import annotations

import asyncio
import random

from litestar_registry import RegistryConfig
from litestar_registry.core.auth import Principal, Role
from litestar_registry.core.clock import ManualClock
from litestar_registry.core.models import HealthReport, Heartbeat, Registration, ServiceStatus
from litestar_registry.core.ports import ServiceStore
from litestar_registry.core.registry import Registry
from litestar_registry.plugin import registry_policy

OWNER = Principal(account="team", role=Role.SERVICE)


def _registry(store: ServiceStore, **settings: object) -> Registry:
    config = RegistryConfig(store=store, auto_approve_all=True, **settings)  # type: ignore[arg-type]
    return Registry(store, registry_policy(config), clock=config.clock)


def _registration(version: str, **fields: object) -> Registration:
    return Registration(slug="hot", name="Hot", version=version, ttl_seconds=3600, **fields)  # type: ignore[arg-type]


async def test_100_version_changes_under_32_pingers_never_conflict(store: ServiceStore) -> None:
    registry = _registry(store, history_limit=1000)
    await registry.register(_registration("0"), OWNER)
    done = asyncio.Event()
    pings = 0
    pinged = asyncio.Event()
    jitter = random.Random(1)

    async def pinger() -> None:
        nonlocal pings
        while not done.is_set():
            await registry.ping("hot", OWNER)
            pings += 1
            pinged.set()
            await asyncio.sleep(jitter.uniform(0.01, 0.1))

    async def writer() -> list[bool]:
        changed = []
        try:
            for n in range(1, 101):
                pinged.clear()
                await pinged.wait()  # at least one ping since the last write
                _, was_changed = await registry.update(_registration(str(n), metadata={"n": n}), OWNER)
                changed.append(was_changed)
        finally:
            done.set()
        return changed

    *_, changed = await asyncio.gather(*(pinger() for _ in range(32)), writer())
    assert changed == [True] * 100  # no ServiceConflict (409) was raised, and every PUT wrote
    stored = await store.get("hot")
    assert (stored.version, stored.metadata, stored.revision, stored.status) == (
        "100",
        {"n": 100},
        101,
        ServiceStatus.ACTIVE,
    )
    history = await store.versions("hot")
    assert [(e.previous_version, e.version) for e in history] == [(None, "0")] + [
        (str(n - 1), str(n)) for n in range(1, 101)
    ]


async def test_a_heartbeats_version_changes_and_its_history_stay_bounded(store: ServiceStore) -> None:
    """Two replicas reporting different versions grew one history entry per heartbeat: now at most the limit."""
    clock = ManualClock()
    registry = _registry(store, clock=clock, history_limit=5)
    await registry.register(_registration("a"), OWNER)
    for n in range(20):
        clock.advance(1)
        version = "b" if n % 2 == 0 else "a"
        record, changed = await registry.heartbeat(
            Heartbeat(slug="hot", health=HealthReport(status="healthy"), version=version), OWNER
        )
        assert (changed, record.version) == (True, version)
    history = await store.versions("hot")
    assert [(e.previous_version, e.version) for e in history] == [("b", "a"), ("a", "b")] * 2 + [("b", "a")]
    assert history[-1].recorded_at == clock.now()


async def test_200_concurrent_heartbeats_leave_the_newest_contact(store: ServiceStore) -> None:
    """Each heartbeat takes its own time from the system clock; whatever order they land in, the newest stays."""
    registry = _registry(store)
    await registry.register(_registration("1"), OWNER)

    async def beat(n: int) -> tuple[object, object]:
        await asyncio.sleep(0)
        health = HealthReport(status="healthy" if n % 3 else "degraded", instance_id=f"i{n}")
        record, _ = await registry.heartbeat(Heartbeat(slug="hot", health=health), OWNER)
        return record.last_seen_at, record.deadline_at

    answers = await asyncio.gather(*(beat(n) for n in range(200)))
    stored = await store.get("hot")
    acknowledged = max(seen for seen, _ in answers)  # type: ignore[type-var]
    # The stored contact is the newest acknowledged one, so its deadline is the latest ever promised to a client.
    assert stored.last_seen_at == acknowledged
    assert stored.deadline_at == max(deadline for _, deadline in answers)  # type: ignore[type-var]
    assert stored.revision == 1  # contact is not data
