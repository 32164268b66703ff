"""The change log under contention: two app instances write one store while a reader follows the log.

Each instance has a store object of its own (its own connections; on memory they share one store), and runs writers
(registrations, heartbeats that change the version or report trouble, pings, deregistrations) and a sweeper, while
the clock moves so that services degrade, recover, expire and register afresh. A reader on one instance follows the
log with ``after=cursor`` all along. It must see every event exactly once, in id order, with no id it skipped
turning up later (on PostgreSQL that is what ids in commit order buy); the final log must hold ids 1..n with exactly
one event per successful write, by topic; and replaying each service's events must end in the status the store holds.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from litestar_registry import RegistryConfig
from litestar_registry.core.auth import Principal, Role
from litestar_registry.core.clock import ManualClock
from litestar_registry.core.errors import ServiceConflict, ServiceExists, ServiceNotFound
from litestar_registry.core.events import CATALOG, ChangeEvent, Topic, payload_of
from litestar_registry.core.models import Contact, HealthReport, Heartbeat, Registration, ServiceStatus
from litestar_registry.core.ports import ServiceStore, Touched
from litestar_registry.core.registry import Registry
from litestar_registry.plugin import registry_policy
from tests.backends import open_store

T = Topic
OWNER = Principal(account="team", role=Role.SERVICE)
SLUGS = [f"svc-{i:02d}" for i in range(10)]
HEALTHY = HealthReport(status="healthy")
DEGRADED = HealthReport(status="degraded")


@pytest.fixture
async def two_stores(backend: str, tmp_path: Path) -> AsyncIterator[tuple[ServiceStore, ServiceStore]]:
    """Two store objects on one backend, as two app instances have (one shared object for memory)."""
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(open_store(backend, tmp_path))
        second = first if backend == "memory" else await stack.enter_async_context(open_store(backend, tmp_path))
        yield first, second


def _counting(store: ServiceStore, appended: Counter[Topic]) -> None:
    """Count the transitions the store's contacts append (the core cannot tell them from its answer alone)."""
    real = store.touch_logged

    async def touch_logged(slug: str, contact: Contact) -> Touched:
        touched = await real(slug, contact)
        if touched.topic is not None:
            appended[touched.topic] += 1
        return touched

    store.touch_logged = touch_logged  # type: ignore[method-assign]


async def test_a_reader_following_the_log_sees_every_event_once(
    two_stores: tuple[ServiceStore, ServiceStore], backend: str
) -> None:
    clock = ManualClock()
    config = RegistryConfig(auto_approve_all=True, clock=clock, expiry_windows=2, sweep_batch_size=4)
    appended: Counter[Topic] = Counter()
    stores = two_stores if two_stores[0] is not two_stores[1] else two_stores[:1]
    for store in stores:
        _counting(store, appended)
    instances = [Registry(store, registry_policy(config), clock=clock) for store in two_stores]
    done = asyncio.Event()
    """The writers are finished: the sweepers stop."""
    quiet = asyncio.Event()
    """Nothing writes any more: the reader's next empty page is the end of the log."""

    async def writer(registry: Registry, seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(30):
            slug = rng.choice(SLUGS)
            roll = rng.random()
            try:
                if roll < 0.3:
                    version = f"{rng.randint(1, 3)}.0"
                    registration = Registration(slug=slug, name=slug, version=version, ttl_seconds=10)
                    await registry.register(registration, OWNER)
                    appended[T.SERVICE_REGISTERED] += 1
                elif roll < 0.55 and slug in SLUGS[:7]:  # the last three are only registered: they go silent
                    health = HEALTHY if rng.random() < 0.7 else DEGRADED
                    heartbeat = Heartbeat(slug=slug, health=health, version=f"{rng.randint(1, 3)}.0")
                    _, changed = await registry.heartbeat(heartbeat, OWNER)
                    appended[T.SERVICE_VERSION_CHANGED] += changed
                elif roll < 0.85 and slug in SLUGS[:7]:
                    await registry.ping(slug, OWNER)
                elif roll >= 0.85:
                    await registry.deregister(slug, OWNER)
                    appended[T.SERVICE_DEREGISTERED] += 1
            except (ServiceExists, ServiceNotFound, ServiceConflict):
                pass  # the slug is taken, gone, or changing too fast: no write, no event
            clock.advance(0.5)  # time moves with the work: services go silent, degrade, expire, come back
            await asyncio.sleep(rng.uniform(0, 0.002))

    async def sweeper(registry: Registry) -> None:
        while not done.is_set():
            for before, after in await registry.sweep():
                if before.status is not after.status:
                    appended[T.SERVICE_EXPIRED if after.status is ServiceStatus.EXPIRED else T.SERVICE_DEGRADED] += 1
            await asyncio.sleep(0.001)

    seen: list[ChangeEvent] = []

    async def reader(store: ServiceStore) -> None:
        rng = random.Random(7)
        cursor = 0
        while True:
            finished = quiet.is_set()  # read once more after the last write: then nothing may be left
            page = await store.read_events(cursor, limit=rng.randint(1, 25))
            assert page.last_id >= (page.items[-1].id if page.items else cursor)
            for event in page.items:
                assert event.id > cursor
                cursor = event.id
            seen.extend(page.items)
            if finished and not page.items:
                return
            await asyncio.sleep(0.001)

    async def writers() -> None:
        try:
            await asyncio.gather(*(writer(instances[i % 2], seed=i) for i in range(8)))
        finally:
            done.set()

    async def background() -> None:
        try:
            await asyncio.gather(writers(), sweeper(instances[0]), sweeper(instances[1]))
        finally:
            quiet.set()

    await asyncio.gather(background(), reader(two_stores[1]))

    final: list[ChangeEvent] = []
    while page := (await two_stores[0].read_events(final[-1].id if final else 0, limit=500)).items:
        final += page
    assert [e.id for e in final] == list(range(1, len(final) + 1))  # gap-free
    assert [e.id for e in seen] == [e.id for e in final]  # every one seen, once, in order: none skipped
    assert seen == final
    counted = Counter(e.topic for e in final)
    assert counted == +appended, (counted, appended)  # one event per successful write
    assert counted[T.SERVICE_REGISTERED] >= len(SLUGS) // 2
    for topic in (T.SERVICE_DEREGISTERED, T.SERVICE_VERSION_CHANGED, T.SERVICE_EXPIRED, T.SERVICE_DEGRADED):
        assert counted[topic], counted  # the run exercised every topic the writers and sweepers can cause
    assert counted[T.SERVICE_RECOVERED], counted

    last: dict[str, ChangeEvent] = {}
    for event in final:
        assert isinstance(payload_of(event), CATALOG[event.topic])
        last[event.subject] = event
    for slug in SLUGS:
        record = await two_stores[0].get(slug)
        history = " ".join(f"{e.id}:{e.topic.value[8:]}@{e.occurred_at:%M:%S.%f}" for e in final if e.subject == slug)
        if slug not in last or last[slug].topic is T.SERVICE_DEREGISTERED:
            assert record is None, (
                f"{slug}: {history}; stored {record}"
            )  # never registered, or removed (keep_deregistered is off)
        else:
            assert record is not None, f"{slug}: {history}"
            assert payload_of(last[slug]).status is record.status, f"{slug}: {history}; stored {record}"  # type: ignore[attr-defined]
