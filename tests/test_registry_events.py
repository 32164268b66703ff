"""The registry core emits the catalog's service topics, through every store, and wakes ``on_events`` after each.

Every write of the core is checked for exactly the topics it appends (none for failed, stale or identical writes),
with payloads that decode into their topic's schema (``payload_of``).
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from litestar_registry import RegistryConfig
from litestar_registry.core.auth import Principal, Role
from litestar_registry.core.clock import ManualClock
from litestar_registry.core.errors import ServiceConflict, ServiceExists, ServiceNotFound
from litestar_registry.core.events import CATALOG, ChangeEvent, Topic, payload_of
from litestar_registry.core.models import HealthReport, Heartbeat, Registration, ServiceStatus
from litestar_registry.core.ports import ServiceStore
from litestar_registry.core.registry import Registry
from litestar_registry.plugin import registry_policy

S = ServiceStatus
T = Topic
OWNER = Principal(account="team", role=Role.SERVICE)
ADMIN = Principal(account="root", role=Role.ADMIN)


class Woken:
    """An ``on_events`` hook that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1


def _registry(store: ServiceStore, clock: ManualClock, hook: Woken | None = None, **settings: object) -> Registry:
    config = RegistryConfig(store=store, clock=clock, **settings)  # type: ignore[arg-type]
    return Registry(store, registry_policy(config), clock=clock, on_events=hook)


def _registration(slug: str = "svc", version: str = "1.0", **fields: object) -> Registration:
    return Registration(slug=slug, name=slug.title(), version=version, ttl_seconds=30, **fields)  # type: ignore[arg-type]


class Log:
    """Follows a store's log from where it stood: ``new()`` is what was appended since the last call."""

    def __init__(self, store: ServiceStore) -> None:
        self.store = store
        self.cursor = 0

    async def new(self) -> list[ChangeEvent]:
        page = await self.store.read_events(self.cursor, limit=1000)
        if page.items:
            assert [e.id for e in page.items] == list(range(self.cursor + 1, page.items[-1].id + 1))
            self.cursor = page.items[-1].id
        assert page.last_id == self.cursor
        for event in page.items:
            assert isinstance(payload_of(event), CATALOG[event.topic])
        return page.items

    async def topics(self) -> list[Topic]:
        return [event.topic for event in await self.new()]


async def test_registration_updates_and_versions(store: ServiceStore) -> None:
    clock, hook, log = ManualClock(), Woken(), Log(store)
    registry = _registry(store, clock, hook, auto_approve_all=True)
    await registry.register(_registration(tags=("a",)), OWNER)
    [event] = await log.new()
    assert (event.topic, event.subject, event.occurred_at) == (T.SERVICE_REGISTERED, "svc", clock.now())
    payload = payload_of(event)
    assert (payload.status, payload.account, payload.revision, payload.tags) == (S.ACTIVE, "team", 1, ("a",))  # type: ignore[attr-defined]
    assert hook.calls == 1

    with pytest.raises(ServiceExists):
        await registry.register(_registration(), OWNER)
    assert await log.new() == []

    clock.advance(1)
    assert (await registry.update(_registration(tags=("a",)), OWNER))[1] is False  # identical: idempotent
    assert (await registry.upsert(_registration(tags=("a",)), OWNER))[1] is False
    assert await log.new() == []
    assert hook.calls == 1

    await registry.update(_registration(tags=("b",)), OWNER)
    [updated] = await log.new()
    assert updated.topic is T.SERVICE_UPDATED
    # 3: the identical upsert restarted the clock, a write of its own (which tells nothing new)
    assert (payload_of(updated).tags, payload_of(updated).revision) == (("b",), 3)  # type: ignore[attr-defined]

    await registry.update(_registration(version="2.0", tags=("b",)), OWNER)
    updated, changed = await log.new()
    assert (updated.topic, changed.topic) == (T.SERVICE_UPDATED, T.SERVICE_VERSION_CHANGED)
    assert (payload_of(changed).version, payload_of(changed).previous_version) == ("2.0", "1.0")  # type: ignore[attr-defined]

    await registry.upsert(_registration(version="3.0", tags=("b",)), OWNER)
    assert await log.topics() == [T.SERVICE_UPDATED, T.SERVICE_VERSION_CHANGED]
    assert hook.calls == 4


async def test_pending_then_approved_or_rejected(store: ServiceStore) -> None:
    clock, log = ManualClock(), Log(store)
    registry = _registry(store, clock)
    await registry.register(_registration("one"), OWNER)
    await registry.register(_registration("two"), OWNER)
    assert [payload_of(e).status for e in await log.new()] == [S.PENDING, S.PENDING]  # type: ignore[attr-defined]
    with pytest.raises(ServiceConflict):  # a pending service takes no heartbeat
        await registry.heartbeat(Heartbeat(slug="one", health=HealthReport(status="healthy")), OWNER)
    await registry.approve("one", ADMIN)
    await registry.reject("two", ADMIN)
    approved, rejected = await log.new()
    assert (approved.topic, approved.subject, rejected.topic, rejected.subject) == (
        T.SERVICE_APPROVED,
        "one",
        T.SERVICE_REJECTED,
        "two",
    )
    assert (payload_of(approved).status, payload_of(approved).by) == (S.ACTIVE, "root")  # type: ignore[attr-defined]
    assert (payload_of(rejected).status, payload_of(rejected).by) == (S.REJECTED, "root")  # type: ignore[attr-defined]


async def test_contact_emits_only_transitions(store: ServiceStore) -> None:
    clock, hook, log = ManualClock(), Woken(), Log(store)
    registry = _registry(store, clock, hook, auto_approve_all=True)
    await registry.register(_registration(), OWNER)
    await log.new()
    healthy, degraded = HealthReport(status="healthy"), HealthReport(status="degraded")
    for _ in range(3):
        clock.advance(1)
        await registry.ping("svc", OWNER)
        await registry.heartbeat(Heartbeat(slug="svc", health=healthy), OWNER)
    assert await log.new() == []
    assert hook.calls == 1
    clock.advance(1)
    await registry.heartbeat(Heartbeat(slug="svc", health=degraded), OWNER)
    await registry.heartbeat(Heartbeat(slug="svc", health=degraded), OWNER)
    [event] = await log.new()
    assert (event.topic, payload_of(event).previous_status) == (T.SERVICE_DEGRADED, S.ACTIVE)  # type: ignore[attr-defined]
    clock.advance(1)
    await registry.ping("svc", OWNER)
    [event] = await log.new()
    assert (event.topic, event.occurred_at, payload_of(event).last_seen_at) == (  # type: ignore[attr-defined]
        T.SERVICE_RECOVERED,
        clock.now(),
        clock.now(),
    )
    assert hook.calls == 3
    with pytest.raises(ServiceNotFound):
        await registry.ping("nobody", OWNER)
    assert await log.new() == []


async def test_a_heartbeat_naming_another_version(store: ServiceStore) -> None:
    clock, log = ManualClock(), Log(store)
    registry = _registry(store, clock, auto_approve_all=True)
    await registry.register(_registration(), OWNER)
    await log.new()
    clock.advance(1)
    await registry.heartbeat(Heartbeat(slug="svc", health=HealthReport(status="degraded"), version="1.1"), OWNER)
    degraded, changed = await log.new()
    assert (degraded.topic, changed.topic) == (T.SERVICE_DEGRADED, T.SERVICE_VERSION_CHANGED)
    assert (payload_of(changed).previous_version, payload_of(changed).status) == ("1.0", S.DEGRADED)  # type: ignore[attr-defined]
    await registry.heartbeat(Heartbeat(slug="svc", health=HealthReport(status="degraded"), version="1.1"), OWNER)
    assert await log.new() == []


@pytest.mark.parametrize("keep", [False, True])
async def test_deregistration(store: ServiceStore, keep: bool) -> None:
    clock, hook, log = ManualClock(), Woken(), Log(store)
    registry = _registry(store, clock, hook, auto_approve_all=True, keep_deregistered=keep)
    await registry.register(_registration(), OWNER)
    await registry.heartbeat(Heartbeat(slug="svc", health=HealthReport(status="degraded")), OWNER)
    await log.new()
    await registry.deregister("svc", OWNER, reason="retired")
    [event] = await log.new()
    assert event.topic is T.SERVICE_DEREGISTERED
    payload = payload_of(event)
    assert (payload.status, payload.previous_status, payload.by, payload.reason) == (  # type: ignore[attr-defined]
        S.DEREGISTERED,
        S.DEGRADED,
        "team",
        "retired",
    )
    with pytest.raises(ServiceNotFound):
        await registry.deregister("svc", OWNER)
    assert await log.new() == []
    assert hook.calls == 3
    clock.advance(1)
    await registry.register(_registration(version="9.0"), OWNER)  # a new life: registered, whatever the version
    [event] = await log.new()
    assert (event.topic, payload_of(event).version, payload_of(event).status) == (  # type: ignore[attr-defined]
        T.SERVICE_REGISTERED,
        "9.0",
        S.ACTIVE,
    )


async def test_a_refused_deregistration_emits_nothing(store: ServiceStore) -> None:
    async def busy(slug: str) -> list[str]:
        return ["workflow-1"]

    clock, log = ManualClock(), Log(store)
    config = RegistryConfig(store=store, clock=clock, auto_approve_all=True)
    registry = Registry(store, registry_policy(config), clock=clock, dependents_checks=[busy])
    await registry.register(_registration(), OWNER)
    await log.new()
    with pytest.raises(ServiceConflict):
        await registry.deregister("svc", OWNER)
    assert await log.new() == []


async def test_sweeps_and_a_new_life_after_expiry(store: ServiceStore) -> None:
    clock, hook, log = ManualClock(), Woken(), Log(store)
    registry = _registry(store, clock, hook, auto_approve_all=True)
    await registry.register(_registration("a"), OWNER)
    await registry.register(_registration("b"), OWNER)
    await log.new()
    assert await registry.sweep() == []
    assert hook.calls == 2
    clock.advance(31)
    await registry.sweep()
    assert sorted((e.topic, e.subject) for e in await log.new()) == [
        (T.SERVICE_DEGRADED, "a"),
        (T.SERVICE_DEGRADED, "b"),
    ]
    assert hook.calls == 3
    clock.advance(30)
    assert len(await registry.sweep()) == 2  # one more window missed: still degraded, nothing to tell
    assert await log.new() == []
    assert hook.calls == 3
    clock.advance(30)
    await registry.sweep()
    events = await log.new()
    assert sorted((e.topic, e.subject) for e in events) == [(T.SERVICE_EXPIRED, "a"), (T.SERVICE_EXPIRED, "b")]
    assert {payload_of(e).previous_status for e in events} == {S.DEGRADED}  # type: ignore[attr-defined]
    assert hook.calls == 4
    await registry.register(_registration("a"), OWNER)
    assert await log.topics() == [T.SERVICE_REGISTERED]


async def test_a_failing_hook_is_logged_and_the_write_stands(
    store: ServiceStore, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken() -> None:
        raise RuntimeError("no one listens")

    clock = ManualClock()
    config = RegistryConfig(store=store, clock=clock, auto_approve_all=True)
    registry = Registry(store, registry_policy(config), clock=clock, on_events=broken)
    with caplog.at_level(logging.ERROR, logger="litestar_registry.registry"):
        record = await registry.register(_registration(), OWNER)
    assert record.status is S.ACTIVE
    assert (await store.read_events()).last_id == 1
    assert "on_events hook failed" in caplog.text


async def test_racing_updates_append_one_event_per_write_that_won(store: ServiceStore) -> None:
    clock, log = ManualClock(), Log(store)
    registry = _registry(store, clock, auto_approve_all=True)
    await registry.register(_registration(), OWNER)
    await log.new()

    async def update(n: int) -> bool:
        await asyncio.sleep(0)
        try:
            return (await registry.update(_registration(metadata={"n": n}), OWNER))[1]
        except ServiceConflict:
            return False

    won = sum(await asyncio.gather(*(update(n) for n in range(8))))
    events = await log.new()
    assert [e.topic for e in events] == [T.SERVICE_UPDATED] * won
    assert [payload_of(e).revision for e in events] == list(range(2, 2 + won))  # type: ignore[attr-defined]
