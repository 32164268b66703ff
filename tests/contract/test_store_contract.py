"""The store contract: one suite, run against every backend (see ``tests/conftest.py`` for the ``store`` fixture)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import msgspec
import pytest

from litestar_registry.core import states
from litestar_registry.core.errors import ServiceExists, ServiceNotFound, StaleWrite
from litestar_registry.core.models import (
    Contact,
    Entrypoint,
    HealthReport,
    Owner,
    ServiceQuery,
    ServiceStatus,
    VersionEntry,
)
from litestar_registry.store.base import ServiceStore
from tests.records import T0, first_version, make_record

S = ServiceStatus
CONTACT_FROM = states.sources(states.Event.CONTACT_HEALTHY)


async def test_create_then_get_round_trips_every_field(store: ServiceStore) -> None:
    record = make_record(
        "full",
        description="does things",
        base_url="http://full:8080",
        health_url="http://full:8080/health",
        documentation_url="http://docs/full",
        endpoints=(
            Entrypoint(name="api", url="http://full/api", protocol="http", method="POST", description="main"),
            Entrypoint(name="grpc", url="grpc://full:9000", protocol="grpc"),
        ),
        capabilities=("search", "index"),
        tags=("core", "beta"),
        metadata={"a": 1, "b": [1, 2], "c": {"d": None}},
        owner=Owner(name="Ann", email="ann@example.com"),
        account="svc-account",
        health=HealthReport(status="healthy", uptime_seconds=1.5, checks={"db": "ok"}, metrics={"rps": 2.0}),
        extensions={"ttl": {"id": "full", "x": [1]}},
    )
    stored = await store.create(record, first_version(record))
    assert stored.revision == 1
    got = await store.get("full")
    assert got == msgspec.structs.replace(record, revision=1)
    assert got.registered_at.tzinfo is not None


async def test_create_refuses_a_taken_slug_and_keeps_the_first(store: ServiceStore) -> None:
    first = make_record("dup", name="First")
    await store.create(first, first_version(first))
    with pytest.raises(ServiceExists):
        await store.create(make_record("dup", name="Second"), first_version(first))
    assert (await store.get("dup")).name == "First"
    assert len(await store.versions("dup")) == 1


async def test_get_unknown_is_none(store: ServiceStore) -> None:
    assert await store.get("nope") is None
    assert await store.versions("nope") == []


async def test_replace_is_conditional_on_revision(store: ServiceStore) -> None:
    record = make_record("cas")
    await store.create(record, first_version(record))
    updated = await store.replace(msgspec.structs.replace(record, name="New"), expected_revision=1)
    assert updated.revision == 2
    with pytest.raises(StaleWrite):
        await store.replace(msgspec.structs.replace(record, name="Lost"), expected_revision=1)
    got = await store.get("cas")
    assert (got.name, got.revision) == ("New", 2)


async def test_replace_unknown_raises_not_found(store: ServiceStore) -> None:
    with pytest.raises(ServiceNotFound):
        await store.replace(make_record("ghost"), expected_revision=1)
    assert await store.get("ghost") is None


async def test_replace_appends_history_atomically(store: ServiceStore) -> None:
    record = make_record("hist")
    await store.create(record, first_version(record))
    later = T0 + timedelta(minutes=1)
    entry = VersionEntry(slug="hist", version="2.0.0", previous_version="1.0.0", recorded_at=later)
    await store.replace(msgspec.structs.replace(record, version="2.0.0"), expected_revision=1, history=entry)
    with pytest.raises(StaleWrite):
        await store.replace(record, expected_revision=1, history=entry)
    assert await store.versions("hist") == [first_version(record), entry]


async def test_concurrent_replaces_of_one_revision_have_one_winner(store: ServiceStore) -> None:
    record = make_record("race")
    await store.create(record, first_version(record))
    results = await asyncio.gather(
        *(store.replace(msgspec.structs.replace(record, name=f"n{i}"), expected_revision=1) for i in range(5)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, StaleWrite) for r in results if isinstance(r, BaseException))
    assert (await store.get("race")).name == winners[0].name


async def test_delete_removes_record_and_history(store: ServiceStore) -> None:
    record = make_record("gone")
    await store.create(record, first_version(record))
    assert await store.delete("gone", expected_revision=7) is False
    assert await store.get("gone") is not None
    assert await store.delete("gone", expected_revision=1) is True
    assert await store.get("gone") is None
    assert await store.versions("gone") == []
    assert await store.delete("gone") is False
    again = make_record("gone", name="Again")
    await store.create(again, first_version(again))
    assert await store.versions("gone") == [first_version(again)]


async def _seed(store: ServiceStore) -> None:
    for slug, fields in {
        "alpha": {"tags": ("core",), "capabilities": ("search",), "description": "Full-text SEARCH"},
        "bravo": {"tags": ("edge",), "capabilities": ("index",), "status": S.PENDING, "next_check_at": None},
        "charlie": {"tags": ("core", "edge"), "capabilities": ("search", "index"), "status": S.DEGRADED},
        "delta": {"tags": (), "capabilities": (), "name": "Searcher"},
        "echo": {"status": S.EXPIRED, "next_check_at": None},
    }.items():
        record = make_record(slug, **fields)
        await store.create(record, first_version(record))


async def _slugs(store: ServiceStore, **query: object) -> list[str]:
    return [r.slug for r in (await store.find(ServiceQuery(**query))).items]  # type: ignore[arg-type]


async def test_list_filters(store: ServiceStore) -> None:
    await _seed(store)
    assert await _slugs(store) == ["alpha", "bravo", "charlie", "delta", "echo"]
    assert await _slugs(store, statuses=frozenset({S.ACTIVE, S.DEGRADED})) == ["alpha", "charlie", "delta"]
    assert await _slugs(store, tag="edge") == ["bravo", "charlie"]
    assert await _slugs(store, capability="search") == ["alpha", "charlie", "echo"]
    assert await _slugs(store, text="search") == ["alpha", "delta"]
    assert await _slugs(store, text="RAV") == ["bravo"]
    assert await _slugs(store, tag="core", capability="index") == ["charlie"]
    assert await _slugs(store, tag="missing") == []


async def test_list_text_filter_treats_wildcards_literally(store: ServiceStore) -> None:
    record = make_record("pct", description="100% sure_thing")
    await store.create(record, first_version(record))
    await _seed(store)
    assert await _slugs(store, text="%") == ["pct"]
    assert await _slugs(store, text="_") == ["pct"]


async def test_list_pages_with_a_cursor(store: ServiceStore) -> None:
    await _seed(store)
    first = await store.find(ServiceQuery(limit=2))
    assert [r.slug for r in first.items] == ["alpha", "bravo"]
    assert first.next_after == "bravo"
    second = await store.find(ServiceQuery(limit=2, after=first.next_after))
    assert [r.slug for r in second.items] == ["charlie", "delta"]
    last = await store.find(ServiceQuery(limit=2, after=second.next_after))
    assert [r.slug for r in last.items] == ["echo"]
    assert last.next_after is None
    exact = await store.find(ServiceQuery(limit=5))
    assert exact.next_after is None
    filtered = await store.find(ServiceQuery(limit=1, tag="edge"))
    assert ([r.slug for r in filtered.items], filtered.next_after) == (["bravo"], "bravo")


async def test_touch_refreshes_deadlines_in_one_step(store: ServiceStore) -> None:
    record = make_record("beat", status=S.DEGRADED, failure_count=2)
    await store.create(record, first_version(record))
    at = T0 + timedelta(seconds=70)
    health = HealthReport(status="healthy", uptime_seconds=70.0, reported_at=at)
    touched = await store.touch("beat", Contact(at=at, status=S.ACTIVE, from_statuses=CONTACT_FROM, health=health))
    assert touched is not None
    assert touched.status is S.ACTIVE
    assert touched.failure_count == 0
    assert touched.last_seen_at == at
    assert touched.deadline_at == touched.next_check_at == at + timedelta(seconds=30)
    assert touched.expires_at == at + timedelta(seconds=90)
    assert touched.health == health
    assert touched.updated_at == record.updated_at
    assert touched.revision == 2
    assert await store.get("beat") == touched


async def test_touch_keeps_health_when_none_is_sent(store: ServiceStore) -> None:
    health = HealthReport(status="degraded", message="slow")
    record = make_record("keep", health=health)
    await store.create(record, first_version(record))
    touched = await store.touch("keep", Contact(at=T0, status=S.ACTIVE, from_statuses=CONTACT_FROM))
    assert touched is not None
    assert touched.health == health


async def test_touch_matches_only_live_unexpired_records(store: ServiceStore) -> None:
    await _seed(store)
    contact = Contact(at=T0 + timedelta(seconds=1), status=S.ACTIVE, from_statuses=CONTACT_FROM)
    assert await store.touch("nope", contact) is None
    assert await store.touch("bravo", contact) is None  # pending
    assert await store.touch("echo", contact) is None  # expired
    assert (await store.get("bravo")).revision == 1
    late = Contact(at=T0 + timedelta(seconds=90), status=S.ACTIVE, from_statuses=CONTACT_FROM)
    assert await store.touch("alpha", late) is None  # silent past expires_at: the sweeper's, not the ping's
    assert (await store.get("alpha")).last_seen_at == T0


async def test_touch_racing_delete_never_resurrects(store: ServiceStore) -> None:
    record = make_record("racer")
    await store.create(record, first_version(record))
    contact = Contact(at=T0 + timedelta(seconds=1), status=S.ACTIVE, from_statuses=CONTACT_FROM)
    await asyncio.gather(store.delete("racer"), *(store.touch("racer", contact) for _ in range(5)))
    assert await store.get("racer") is None


async def test_sweep_applies_advance_to_what_is_due_only(store: ServiceStore) -> None:
    for slug, offset in (("a", 0), ("b", 10), ("c", 20)):
        record = make_record(slug, at=T0 + timedelta(seconds=offset))
        await store.create(record, first_version(record))
    pending = make_record("p", status=S.PENDING, next_check_at=None)
    await store.create(pending, first_version(pending))

    now = T0 + timedelta(seconds=45)  # a and b missed one window, c is not due
    changed = await store.sweep_due(now, states.advance)
    assert sorted((before.slug, after.status, after.failure_count) for before, after in changed) == [
        ("a", S.DEGRADED, 1),
        ("b", S.DEGRADED, 1),
    ]
    a = await store.get("a")
    assert (a.status, a.revision, a.next_check_at) == (S.DEGRADED, 2, T0 + timedelta(seconds=60))
    assert (await store.get("c")).status is S.ACTIVE
    assert await store.sweep_due(now, states.advance) == []

    changed = await store.sweep_due(T0 + timedelta(seconds=95), states.advance)
    assert sorted((before.slug, after.status) for before, after in changed) == [
        ("a", S.EXPIRED),
        ("b", S.DEGRADED),
        ("c", S.DEGRADED),
    ]
    expired = await store.get("a")
    assert (expired.failure_count, expired.next_check_at) == (3, None)
    assert (await store.get("p")).status is S.PENDING


async def test_sweep_respects_limit_earliest_first(store: ServiceStore) -> None:
    for i in range(5):
        record = make_record(f"s{i}", at=T0 + timedelta(seconds=4 - i))
        await store.create(record, first_version(record))
    changed = await store.sweep_due(T0 + timedelta(seconds=100), states.advance, limit=2)
    assert [before.slug for before, _ in changed] == ["s4", "s3"]
    rest = await store.sweep_due(T0 + timedelta(seconds=100), states.advance, limit=10)
    assert sorted(before.slug for before, _ in rest) == ["s0", "s1", "s2"]


async def test_sweep_skips_a_record_touched_since_it_fell_due(store: ServiceStore) -> None:
    record = make_record("fresh")
    await store.create(record, first_version(record))
    at = T0 + timedelta(seconds=29)
    await store.touch("fresh", Contact(at=at, status=S.ACTIVE, from_statuses=CONTACT_FROM))
    assert await store.sweep_due(T0 + timedelta(seconds=31), states.advance) == []
    assert (await store.get("fresh")).status is S.ACTIVE


async def test_concurrent_sweeps_claim_each_record_once(store: ServiceStore) -> None:
    for i in range(20):
        record = make_record(f"c{i:02d}")
        await store.create(record, first_version(record))
    now = T0 + timedelta(seconds=100)
    results = await asyncio.gather(*(store.sweep_due(now, states.advance, limit=7) for _ in range(4)))
    claimed = [before.slug for result in results for before, _ in result]
    assert len(claimed) == len(set(claimed))
    claimed += [before.slug for before, _ in await store.sweep_due(now, states.advance)]
    assert sorted(claimed) == [f"c{i:02d}" for i in range(20)]
    assert {r.status for r in (await store.find(ServiceQuery(limit=100))).items} == {S.EXPIRED}


async def test_touch_with_an_account_matches_only_that_owner(store: ServiceStore) -> None:
    record = make_record("owned", account="team-a")
    await store.create(record, first_version(record))
    at = T0 + timedelta(seconds=1)
    stranger = Contact(at=at, status=S.ACTIVE, from_statuses=CONTACT_FROM, account="team-b")
    assert await store.touch("owned", stranger) is None
    assert (await store.get("owned")).revision == 1
    owner = Contact(at=at, status=S.ACTIVE, from_statuses=CONTACT_FROM, account="team-a")
    assert (await store.touch("owned", owner)).last_seen_at == at
