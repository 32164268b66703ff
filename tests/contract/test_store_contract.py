"""The store contract: one suite, run against every backend (see ``tests/conftest.py`` for the ``store`` fixture)."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from litestar_registry.core import states
from litestar_registry.core.errors import ServiceExists, ServiceNotFound, StaleWrite
from litestar_registry.core.models import (
    Contact,
    Entrypoint,
    HealthReport,
    Owner,
    Rewrite,
    ServiceQuery,
    ServiceRecord,
    ServiceStatus,
    VersionEntry,
)
from litestar_registry.core.ports import ServiceStore
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
    assert (touched.revision, touched.contact_revision) == (1, 2)  # contact is not data
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
    assert (a.status, a.revision, a.contact_revision) == (S.DEGRADED, 1, 2)
    assert a.next_check_at == T0 + timedelta(seconds=60)
    assert [after for before, after in changed if before.slug == "a"] == [a]  # ``after`` as stored
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


# --- contact apart from data ------------------------------------------------------------------------------------------

UPDATE_FROM = states.sources(states.Event.UPDATE)
KEEP = Rewrite(from_statuses=UPDATE_FROM)
"""How a re-registration that keeps the TTL writes: data only, unless a sweep expired what it read."""


def _contact(seconds: float, **fields: Any) -> Contact:
    return Contact(at=T0 + timedelta(seconds=seconds), status=S.ACTIVE, from_statuses=CONTACT_FROM, **fields)


async def test_contact_leaves_the_data_revision_and_a_data_write_keeps_the_contact(store: ServiceStore) -> None:
    record = make_record("split")
    await store.create(record, first_version(record))
    read = await store.get("split")  # what a PUT reads ...
    health = HealthReport(status="degraded", message="slow")
    contact = Contact(at=T0 + timedelta(seconds=5), status=S.DEGRADED, from_statuses=CONTACT_FROM, health=health)
    touched = await store.touch("split", contact)  # ... then a heartbeat lands ...
    assert (touched.revision, touched.contact_revision) == (1, 2)
    # ... and the PUT's compare-and-set still wins, without writing back the contact state it read.
    written = await store.replace(msgspec.structs.replace(read, name="Renamed"), expected_revision=1, rewrite=KEEP)
    assert (written.name, written.revision, written.contact_revision) == ("Renamed", 2, 2)
    assert (written.status, written.health, written.last_seen_at) == (S.DEGRADED, health, contact.at)
    assert (written.deadline_at, written.next_check_at) == (contact.at + timedelta(seconds=30),) * 2
    assert await store.get("split") == written
    assert await store.delete("split", expected_revision=2) is True  # contact never spoils a delete either


async def test_a_data_write_keeps_a_status_that_contact_or_a_sweep_moved(store: ServiceStore) -> None:
    record = make_record("moved")
    await store.create(record, first_version(record))
    read = await store.get("moved")
    [(_, degraded)] = await store.sweep_due(T0 + timedelta(seconds=31), states.advance)  # a sweep degrades it
    written = await store.replace(msgspec.structs.replace(read, name="N"), expected_revision=1, rewrite=KEEP)
    assert (written.status, written.failure_count, written.next_check_at) == (
        S.DEGRADED,
        1,
        degraded.next_check_at,
    )
    assert written.contact_revision == degraded.contact_revision  # the sweep's claim is not spoiled by data
    assert await store.sweep_due(T0 + timedelta(seconds=59), states.advance) == []
    [(before, after)] = await store.sweep_due(T0 + timedelta(seconds=61), states.advance)
    assert (before.name, after.name, after.failure_count) == ("N", "N", 2)


async def test_a_data_write_refuses_a_status_it_did_not_read(store: ServiceStore) -> None:
    """A PUT that read a live service must not write over the expiry a sweeper persisted meanwhile."""
    record = make_record("late")
    await store.create(record, first_version(record))
    read = await store.get("late")
    [(_, expired)] = await store.sweep_due(T0 + timedelta(seconds=91), states.advance)
    assert expired.status is S.EXPIRED
    entry = VersionEntry(slug="late", version="2.0.0", previous_version="1.0.0", recorded_at=T0)
    with pytest.raises(StaleWrite):
        await store.replace(
            msgspec.structs.replace(read, version="2.0.0"), expected_revision=1, rewrite=KEEP, history=entry
        )
    assert await store.get("late") == expired
    assert await store.versions("late") == [first_version(record)]


async def test_restarting_the_clock_takes_the_newer_contact_and_the_new_ttl(store: ServiceStore) -> None:
    health = HealthReport(status="healthy", message="fine")
    record = make_record("restart")
    await store.create(record, first_version(record))
    read = await store.get("restart")
    await store.touch("restart", _contact(10, health=health))  # newer than the restart below
    longer = msgspec.structs.replace(read, ttl_seconds=60.0)
    written = await store.replace(
        longer, expected_revision=1, rewrite=Rewrite(from_statuses=UPDATE_FROM, restart_at=T0 + timedelta(seconds=5))
    )
    seen = T0 + timedelta(seconds=10)
    assert (written.last_seen_at, written.deadline_at, written.next_check_at) == (
        seen,
        seen + timedelta(seconds=60),
        seen + timedelta(seconds=60),
    )
    assert (written.expires_at, written.failure_count, written.health) == (seen + timedelta(seconds=180), 0, health)
    assert (written.status, written.revision, written.contact_revision) == (S.ACTIVE, 2, 3)
    later = T0 + timedelta(seconds=20)
    fresh = await store.replace(
        written, expected_revision=2, rewrite=Rewrite(status=S.ACTIVE, restart_at=later, clear_health=True)
    )
    assert (fresh.last_seen_at, fresh.deadline_at, fresh.health) == (later, later + timedelta(seconds=60), None)
    assert await store.get("restart") == fresh


async def test_writing_a_status_that_is_not_live_stops_the_clock(store: ServiceStore) -> None:
    record = make_record("stopped")
    await store.create(record, first_version(record))
    gone = await store.replace(record, expected_revision=1, rewrite=Rewrite(status=S.DEREGISTERED))
    assert (gone.status, gone.next_check_at, gone.contact_revision) == (S.DEREGISTERED, None, 2)
    assert gone.last_seen_at == T0
    assert await store.sweep_due(T0 + timedelta(seconds=1000), states.advance) == []
    assert await store.touch("stopped", _contact(1)) is None
    assert await store.get("stopped") == gone


async def test_approval_writes_the_status_and_starts_the_clock(store: ServiceStore) -> None:
    record = make_record("waiting", status=S.PENDING, next_check_at=None)
    await store.create(record, first_version(record))
    approve = Rewrite(from_statuses=frozenset({S.PENDING}), status=S.ACTIVE, restart_at=T0 + timedelta(seconds=100))
    approved = await store.replace(record, expected_revision=1, rewrite=approve)
    assert (approved.status, approved.next_check_at) == (S.ACTIVE, T0 + timedelta(seconds=130))
    with pytest.raises(StaleWrite):  # a second decision on the same read: not pending any more
        await store.replace(record, expected_revision=2, rewrite=approve)
    changed = await store.sweep_due(T0 + timedelta(seconds=131), states.advance)
    assert [after.status for _, after in changed] == [S.DEGRADED]


async def test_concurrent_sweeps_and_data_writes_lose_neither(store: ServiceStore) -> None:
    """Every record ends renamed (the data writes) and degraded (the sweep), or deregistered if a write said so."""
    for i in range(40):
        record = make_record(f"m{i:02d}")
        await store.create(record, first_version(record))
    reads = [await store.get(f"m{i:02d}") for i in range(40)]

    async def write(i: int) -> None:
        await asyncio.sleep(0)
        read = reads[i]
        if i % 2:
            await store.replace(msgspec.structs.replace(read, name=f"n{i}"), expected_revision=1, rewrite=KEEP)
        else:
            await store.replace(read, expected_revision=1, rewrite=Rewrite(status=S.DEREGISTERED))

    now = T0 + timedelta(seconds=31)
    results = await asyncio.gather(
        store.sweep_due(now, states.advance), *(write(i) for i in range(40)), store.sweep_due(now, states.advance)
    )
    swept = [before.slug for result in results[:1] + results[-1:] for before, _ in result]  # type: ignore[union-attr]
    assert len(swept) == len(set(swept))
    for i in range(40):
        stored = await store.get(f"m{i:02d}")
        if i % 2:
            assert (stored.name, stored.status) == (f"n{i}", S.DEGRADED), stored
        else:
            assert (stored.status, stored.next_check_at) == (S.DEREGISTERED, None), stored


# --- contact never goes backwards -----------------------------------------------------------------------------------


async def test_an_older_contact_changes_nothing_and_answers_the_record(store: ServiceStore) -> None:
    record = make_record("ordered")
    await store.create(record, first_version(record))
    newest = await store.touch("ordered", _contact(20, health=HealthReport(status="healthy", message="new")))
    late = Contact(
        at=T0 + timedelta(seconds=10),
        status=S.DEGRADED,
        from_statuses=CONTACT_FROM,
        health=HealthReport(status="degraded", message="old"),
    )
    assert await store.touch("ordered", late) == newest
    assert await store.get("ordered") == newest
    same = await store.touch("ordered", _contact(20))  # the same instant again is not older: it applies
    assert (same.last_seen_at, same.contact_revision) == (newest.last_seen_at, newest.contact_revision + 1)
    stranger = Contact(at=T0, status=S.ACTIVE, from_statuses=CONTACT_FROM, account="team-x")
    assert await store.touch("ordered", stranger) is None  # an older contact still has to match


async def test_concurrent_contacts_leave_the_newest(store: ServiceStore) -> None:
    record = make_record("many")
    await store.create(record, first_version(record))
    offsets = list(range(1, 201))
    random.Random(8).shuffle(offsets)

    async def contact(offset: int) -> tuple[int, ServiceRecord | None]:
        await asyncio.sleep(0)
        return offset, await store.touch("many", _contact(offset / 10))

    answers = await asyncio.gather(*(contact(offset) for offset in offsets))
    newest = T0 + timedelta(seconds=20)
    stored = await store.get("many")
    assert (stored.last_seen_at, stored.deadline_at) == (newest, newest + timedelta(seconds=30))
    assert stored.revision == 1
    for offset, answer in answers:
        assert answer is not None
        assert answer.last_seen_at >= T0 + timedelta(seconds=offset / 10)  # the caller sees no time before its own


# --- bounded, paged history -----------------------------------------------------------------------------------------


def _entry(slug: str, n: int) -> VersionEntry:
    return VersionEntry(slug=slug, version=f"{n}.0", previous_version=f"{n - 1}.0", recorded_at=T0 + timedelta(n))


async def _append(store: ServiceStore, slug: str, numbers: range, limit: int | None = None) -> None:
    for n in numbers:
        current = await store.get(slug)
        changed = msgspec.structs.replace(current, version=f"{n}.0")
        await store.replace(changed, expected_revision=current.revision, history=_entry(slug, n), history_limit=limit)


async def test_history_keeps_the_newest_entries_up_to_the_limit(store: ServiceStore) -> None:
    record = make_record("capped")
    await store.create(record, first_version(record))
    await _append(store, "capped", range(1, 6), limit=3)
    assert await store.versions("capped") == [_entry("capped", n) for n in (3, 4, 5)]
    await _append(store, "capped", range(6, 7))  # without a limit, nothing is dropped
    assert [e.version for e in await store.versions("capped")] == ["3.0", "4.0", "5.0", "6.0"]
    await _append(store, "capped", range(7, 8), limit=1)
    assert await store.versions("capped") == [_entry("capped", 7)]


async def test_history_pages_by_position(store: ServiceStore) -> None:
    record = make_record("paged")
    await store.create(record, first_version(record))
    await _append(store, "paged", range(1, 5))
    everything = [first_version(record), *(_entry("paged", n) for n in range(1, 5))]
    first = await store.version_page("paged", limit=2)
    assert (first.items, first.next_after is not None) == (everything[:2], True)
    second = await store.version_page("paged", after=first.next_after, limit=2)
    assert (second.items, second.next_after is not None) == (everything[2:4], True)
    last = await store.version_page("paged", after=second.next_after, limit=2)
    assert (last.items, last.next_after) == (everything[4:], None)
    exact = await store.version_page("paged", limit=5)
    assert (exact.items, exact.next_after) == (everything, None)
    assert (await store.version_page("paged")).items == everything
    unknown = await store.version_page("nobody", limit=2)
    assert (unknown.items, unknown.next_after) == ([], None)


async def test_history_positions_stay_valid_while_the_oldest_are_dropped(store: ServiceStore) -> None:
    record = make_record("rolling")
    await store.create(record, first_version(record))
    await _append(store, "rolling", range(1, 4), limit=4)  # 0.0 (first), 1.0, 2.0, 3.0
    first = await store.version_page("rolling", limit=2)
    assert [e.version for e in first.items] == ["1.0.0", "1.0"]
    await _append(store, "rolling", range(4, 6), limit=4)  # drops 1.0.0 and 1.0: 2.0 .. 5.0 remain
    rest = await store.version_page("rolling", after=first.next_after, limit=10)
    assert ([e.version for e in rest.items], rest.next_after) == (["2.0", "3.0", "4.0", "5.0"], None)
    await _append(store, "rolling", range(6, 9), limit=4)  # the cursor's next entries were dropped too
    later = await store.version_page("rolling", after=first.next_after, limit=2)
    assert [e.version for e in later.items] == ["5.0", "6.0"]


# --- contention: pings never make a data write fail -----------------------------------------------------------------


async def test_pings_never_make_a_data_write_fail(store: ServiceStore) -> None:
    """100 version changes to one slug, each compare-and-set on what it read, while 32 tasks ping it.

    Every change waits for a ping to land between its read and its write, so each would have failed when contact
    moved the revision that data writes compare on.
    """
    record = make_record("busy", ttl=3600)
    await store.create(record, first_version(record))
    done = asyncio.Event()
    pings = 0
    pinged = asyncio.Event()
    jitter = random.Random(2)

    async def pinger(n: int) -> None:
        nonlocal pings
        tick = 0
        while not done.is_set():
            tick += 1
            assert await store.touch("busy", _contact(n + tick / 1000)) is not None
            pings += 1
            pinged.set()
            await asyncio.sleep(jitter.uniform(0.01, 0.1))  # busy clients, not a tight loop

    async def writer() -> list[VersionEntry]:
        entries = [first_version(record)]
        try:
            for n in range(1, 101):
                current = await store.get("busy")
                pinged.clear()
                await pinged.wait()  # a ping lands between the read and the write
                changed = msgspec.structs.replace(current, version=f"{n}.0")
                entry = VersionEntry(slug="busy", version=f"{n}.0", previous_version=current.version, recorded_at=T0)
                await store.replace(
                    changed, expected_revision=current.revision, history=entry, rewrite=KEEP, history_limit=1000
                )  # a StaleWrite here fails the test: there is no retry
                entries.append(entry)
        finally:
            done.set()
        return entries

    *_, entries = await asyncio.gather(*(pinger(n) for n in range(32)), writer())
    stored = await store.get("busy")
    assert (stored.version, stored.revision) == ("100.0", 101)
    assert await store.versions("busy") == entries
    assert pings >= 100
