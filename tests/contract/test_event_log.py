"""The change log's store contract: every backend appends events in the same atomic write as the change, or not at all.

Run against every backend through the ``store`` fixture of ``tests/conftest.py``. Every event read back must decode
into its topic's payload (``payload_of``), and ids must grow strictly with no gaps.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import msgspec
import pytest

from litestar_registry.core import states
from litestar_registry.core.errors import ServiceExists, ServiceNotFound, StaleWrite
from litestar_registry.core.events import (
    CATALOG,
    ChangeEvent,
    EventDraft,
    EventPage,
    Topic,
    payload_of,
    service_draft,
)
from litestar_registry.core.models import Contact, HealthReport, Rewrite, ServiceRecord, ServiceStatus, VersionEntry
from litestar_registry.core.ports import ServiceStore, Touched
from tests.records import T0, first_version, make_record

S = ServiceStatus
CONTACT_FROM = states.sources(states.Event.CONTACT_HEALTHY)
KEEP = Rewrite(from_statuses=states.sources(states.Event.UPDATE))


async def log_of(store: ServiceStore, after: int = 0) -> list[ChangeEvent]:
    """Every event after ``after``, read a page of 7 at a time, each checked against its topic's payload schema."""
    events: list[ChangeEvent] = []
    while True:
        page = await store.read_events(after, limit=7)
        events += page.items
        if not page.items:
            break
        after = page.items[-1].id
    for event in events:
        assert isinstance(payload_of(event), CATALOG[event.topic])
    return events


def topics(events: list[ChangeEvent]) -> list[tuple[Topic, str]]:
    return [(event.topic, event.subject) for event in events]


def registered(record: ServiceRecord, at: timedelta = timedelta()) -> EventDraft:
    return service_draft(Topic.SERVICE_REGISTERED, record, T0 + at)


async def create(store: ServiceStore, slug: str, **fields: object) -> ServiceRecord:
    record = make_record(slug, **fields)  # type: ignore[arg-type]
    return await store.create(record, first_version(record), events=[registered(record)])


def contact(seconds: float, status: ServiceStatus = S.ACTIVE, **fields: object) -> Contact:
    return Contact(at=T0 + timedelta(seconds=seconds), status=status, from_statuses=CONTACT_FROM, **fields)  # type: ignore[arg-type]


# --- appends ----------------------------------------------------------------------------------------------------------


async def test_an_empty_log(store: ServiceStore) -> None:
    assert await store.read_events() == EventPage(items=[], last_id=0)
    assert await store.read_events(5, limit=0) == EventPage(items=[], last_id=0)
    assert await store.trim_events(keep_after=10, older_than=T0) == 0


async def test_create_appends_its_events_with_the_record(store: ServiceStore) -> None:
    record = make_record("alpha", tags=(), capabilities=())
    draft = registered(record)
    await store.create(record, first_version(record), events=[draft])
    [event] = await log_of(store)
    assert (event.id, event.topic, event.subject, event.tenant) == (1, Topic.SERVICE_REGISTERED, "alpha", None)
    assert event.occurred_at == T0
    assert event.occurred_at.tzinfo is not None
    assert event.data == draft.data  # empty tags stay an empty list
    payload = payload_of(event)
    assert (payload.slug, payload.status, payload.revision, payload.tags) == ("alpha", S.ACTIVE, 1, ())  # type: ignore[attr-defined]
    assert (await store.read_events()).last_id == 1


async def test_a_refused_create_appends_nothing(store: ServiceStore) -> None:
    await create(store, "dup")
    with pytest.raises(ServiceExists):
        await create(store, "dup", name="Second")
    assert topics(await log_of(store)) == [(Topic.SERVICE_REGISTERED, "dup")]
    assert (await store.read_events()).last_id == 1


async def test_a_write_without_events_appends_nothing(store: ServiceStore) -> None:
    record = make_record("quiet")
    await store.create(record, first_version(record))
    await store.replace(msgspec.structs.replace(record, name="Q"), expected_revision=1)
    assert await store.delete("quiet") is True
    assert await store.read_events() == EventPage(items=[], last_id=0)


async def test_replace_appends_only_when_it_writes(store: ServiceStore) -> None:
    record = await create(store, "cas")
    changed = msgspec.structs.replace(record, name="New", version="2.0.0")
    after = msgspec.structs.replace(changed, revision=2)
    drafts = [
        service_draft(Topic.SERVICE_UPDATED, after, T0 + timedelta(seconds=1)),
        service_draft(Topic.SERVICE_VERSION_CHANGED, after, T0 + timedelta(seconds=1), previous_version="1.0.0"),
    ]
    entry = VersionEntry(slug="cas", version="2.0.0", previous_version="1.0.0", recorded_at=T0)
    await store.replace(changed, expected_revision=1, history=entry, events=drafts)
    with pytest.raises(StaleWrite):
        await store.replace(changed, expected_revision=1, events=drafts)
    with pytest.raises(StaleWrite):  # the status condition fails: nothing either
        await store.replace(changed, expected_revision=2, rewrite=Rewrite(from_statuses=frozenset({S.PENDING})))
    with pytest.raises(ServiceNotFound):
        await store.replace(make_record("ghost"), expected_revision=1, events=drafts)
    events = await log_of(store)
    assert [(e.id, e.topic) for e in events] == [
        (1, Topic.SERVICE_REGISTERED),
        (2, Topic.SERVICE_UPDATED),
        (3, Topic.SERVICE_VERSION_CHANGED),
    ]
    assert [e.data for e in events[1:]] == [d.data for d in drafts]
    assert payload_of(events[2]).previous_version == "1.0.0"  # type: ignore[attr-defined]


async def test_replace_tells_the_status_it_stored_not_the_one_the_writer_read(store: ServiceStore) -> None:
    """A data write that keeps the status: contact degraded the service between the writer's read and its write."""
    read = await create(store, "split")
    await store.touch("split", contact(5, S.DEGRADED, health=HealthReport(status="degraded")))
    renamed = msgspec.structs.replace(read, name="Renamed")
    draft = service_draft(Topic.SERVICE_UPDATED, msgspec.structs.replace(renamed, revision=2), T0)
    assert draft.data["status"] == "active"  # what the writer read
    written = await store.replace(renamed, expected_revision=1, rewrite=KEEP, events=[draft])
    assert written.status is S.DEGRADED
    *_, degraded, updated = await log_of(store)
    assert (degraded.topic, updated.topic) == (Topic.SERVICE_DEGRADED, Topic.SERVICE_UPDATED)
    assert payload_of(updated).status is S.DEGRADED  # type: ignore[attr-defined]
    assert {key: value for key, value in updated.data.items() if key != "status"} == {
        key: value for key, value in draft.data.items() if key != "status"
    }


async def test_delete_appends_only_when_it_removes(store: ServiceStore) -> None:
    record = await create(store, "gone")
    gone = msgspec.structs.replace(record, status=S.DEREGISTERED)
    draft = service_draft(Topic.SERVICE_DEREGISTERED, gone, T0, previous_status=S.ACTIVE, by="team", reason="bye")
    assert await store.delete("gone", expected_revision=7, events=[draft]) is False
    assert await store.delete("nobody", events=[draft]) is False
    assert await store.delete("gone", expected_revision=1, events=[draft]) is True
    assert await store.delete("gone", events=[draft]) is False
    *_, event = await log_of(store)
    assert (event.id, event.topic, event.data) == (2, Topic.SERVICE_DEREGISTERED, draft.data)
    payload = payload_of(event)
    assert (payload.status, payload.previous_status, payload.by, payload.reason) == (  # type: ignore[attr-defined]
        S.DEREGISTERED,
        S.ACTIVE,
        "team",
        "bye",
    )


async def test_workflow_topics_keep_their_tenant(store: ServiceStore) -> None:
    """The log takes any topic of the catalog: a workflow event keeps its tenant (provisioning appends these later)."""
    record = make_record("wf")
    draft = EventDraft(
        topic=Topic.WORKFLOW_STARTED,
        occurred_at=T0,
        subject="wf-1",
        tenant="acme",
        data={"workflow_id": "wf-1", "tenant": "acme", "service_slug": "wf", "definition": "d", "steps": ["a"]},
    )
    await store.create(record, first_version(record), events=[draft])
    [event] = await log_of(store)
    assert (event.topic, event.subject, event.tenant, event.data) == (
        Topic.WORKFLOW_STARTED,
        "wf-1",
        "acme",
        draft.data,
    )


# --- contact ----------------------------------------------------------------------------------------------------------


async def test_contact_that_keeps_the_status_appends_nothing(store: ServiceStore) -> None:
    await create(store, "steady")
    for second in (1, 2, 3):
        touched = await store.touch_logged("steady", contact(second))
        assert touched.topic is None
        assert touched.record is not None
        assert touched.record.last_seen_at == T0 + timedelta(seconds=second)
    assert await store.touch_logged("nobody", contact(4)) == Touched(None, None)
    assert (await store.read_events()).last_id == 1


async def test_contact_that_moves_the_status_appends_its_transition(store: ServiceStore) -> None:
    await create(store, "flappy")
    report = HealthReport(status="degraded", message="slow")
    down = await store.touch_logged("flappy", contact(5, S.DEGRADED, health=report))
    assert down.topic is Topic.SERVICE_DEGRADED
    assert (await store.touch_logged("flappy", contact(6, S.DEGRADED))).topic is None  # still degraded
    older = await store.touch_logged("flappy", contact(5.5))  # older than the stored contact: changes nothing
    assert older.topic is None
    assert older.record is not None
    assert older.record.last_seen_at == T0 + timedelta(seconds=6)
    up = await store.touch_logged("flappy", contact(7))
    assert up.topic is Topic.SERVICE_RECOVERED
    _, degraded, recovered = await log_of(store)
    assert (degraded.topic, degraded.occurred_at) == (Topic.SERVICE_DEGRADED, T0 + timedelta(seconds=5))
    assert payload_of(degraded) == CATALOG[Topic.SERVICE_DEGRADED](
        slug="flappy",
        name="Flappy",
        version="1.0.0",
        status=S.DEGRADED,
        previous_status=S.ACTIVE,
        last_seen_at=T0 + timedelta(seconds=5),
        failure_count=0,
    )
    assert (recovered.topic, recovered.occurred_at) == (Topic.SERVICE_RECOVERED, T0 + timedelta(seconds=7))
    assert payload_of(recovered) == CATALOG[Topic.SERVICE_RECOVERED](
        slug="flappy",
        name="Flappy",
        version="1.0.0",
        status=S.ACTIVE,
        previous_status=S.DEGRADED,
        last_seen_at=T0 + timedelta(seconds=7),
    )
    assert (
        recovered.data
        == service_draft(
            Topic.SERVICE_RECOVERED,
            up.record,
            recovered.occurred_at,
            previous_status=S.DEGRADED,  # type: ignore[arg-type]
        ).data
    )


async def test_contact_that_matches_nothing_appends_nothing(store: ServiceStore) -> None:
    await create(store, "owned", account="team-a", status=S.DEGRADED)
    assert await store.touch_logged("owned", contact(1, account="team-b")) == Touched(None, None)
    assert await store.touch_logged("owned", contact(91)) == Touched(None, None)  # silent past its expiry
    assert (await store.read_events()).last_id == 1


# --- sweeps -----------------------------------------------------------------------------------------------------------


async def test_sweeps_append_degraded_and_expired_for_what_they_claim(store: ServiceStore) -> None:
    await create(store, "a")
    await create(store, "b", at=T0 + timedelta(seconds=10))
    await create(store, "p", status=S.PENDING, next_check_at=None)
    changed = await store.sweep_due(T0 + timedelta(seconds=45), states.advance)
    assert len(changed) == 2
    events = await log_of(store, after=3)
    assert sorted(topics(events)) == [(Topic.SERVICE_DEGRADED, "a"), (Topic.SERVICE_DEGRADED, "b")]
    assert {e.occurred_at for e in events} == {T0 + timedelta(seconds=45)}
    a = next(e for e in events if e.subject == "a")
    assert payload_of(a) == CATALOG[Topic.SERVICE_DEGRADED](
        slug="a",
        name="A",
        version="1.0.0",
        status=S.DEGRADED,
        previous_status=S.ACTIVE,
        last_seen_at=T0,
        failure_count=1,
    )
    # Another missed window keeps it degraded: no event. Then expiry.
    assert len(await store.sweep_due(T0 + timedelta(seconds=75), states.advance)) == 2
    assert (await store.read_events()).last_id == 5
    await store.sweep_due(T0 + timedelta(seconds=95), states.advance)
    events = await log_of(store, after=5)
    assert topics(events) == [(Topic.SERVICE_EXPIRED, "a")]
    assert payload_of(events[0]) == CATALOG[Topic.SERVICE_EXPIRED](
        slug="a", name="A", version="1.0.0", status=S.EXPIRED, previous_status=S.DEGRADED, last_seen_at=T0
    )


async def test_concurrent_sweeps_append_one_event_per_claim(store: ServiceStore) -> None:
    for i in range(12):
        await create(store, f"c{i:02d}")
    now = T0 + timedelta(seconds=100)
    results = await asyncio.gather(*(store.sweep_due(now, states.advance, limit=5) for _ in range(3)))
    results.append(await store.sweep_due(now, states.advance))
    claimed = sorted(before.slug for result in results for before, _ in result)
    assert claimed == [f"c{i:02d}" for i in range(12)]
    events = await log_of(store, after=12)
    assert sorted(topics(events)) == [(Topic.SERVICE_EXPIRED, f"c{i:02d}") for i in range(12)]


# --- reading and retention --------------------------------------------------------------------------------------------


async def _mixed_log(store: ServiceStore) -> None:
    """Ten events: a, b, c registered, then a and b degraded and recovered, c degraded, a ... (ids 1 to 10)."""
    for slug in ("a", "b", "c"):
        await create(store, slug)
    for second, slug in enumerate(("a", "b", "a", "b", "c", "a", "c"), start=1):
        record = await store.get(slug)
        status = S.DEGRADED if record.status is S.ACTIVE else S.ACTIVE  # type: ignore[union-attr]
        assert (await store.touch_logged(slug, contact(second, status))).topic is not None


async def test_read_filters_by_topic_and_subject_and_pages(store: ServiceStore) -> None:
    await _mixed_log(store)
    everything = await log_of(store)
    assert [e.id for e in everything] == list(range(1, 11))
    page = await store.read_events(3, limit=4)
    assert ([e.id for e in page.items], page.last_id) == ([4, 5, 6, 7], 10)
    assert (await store.read_events(10)).items == []
    assert (await store.read_events(99)) == EventPage(items=[], last_id=10)
    only_a = await store.read_events(subject="a")
    assert [e.id for e in only_a.items] == [1, 4, 6, 9]
    assert only_a.last_id == 10
    recovered = await store.read_events(topics=[Topic.SERVICE_RECOVERED])
    assert topics(recovered.items) == [(Topic.SERVICE_RECOVERED, s) for s in "abc"]
    both = await store.read_events(4, limit=2, topics={Topic.SERVICE_RECOVERED, Topic.SERVICE_DEGRADED}, subject="a")
    assert [e.id for e in both.items] == [6, 9]
    assert (await store.read_events(topics=[Topic.SERVICE_EXPIRED])).items == []
    assert (await store.read_events(topics=[])).items == []
    assert (await store.read_events(limit=0)).items == []


async def test_read_takes_any_cursor_and_limit(store: ServiceStore) -> None:
    await _mixed_log(store)
    assert [e.id for e in (await store.read_events(-5, limit=10**12)).items] == list(range(1, 11))
    assert await store.read_events(2**70) == EventPage(items=[], last_id=10)
    assert (await store.read_events(2, limit=-1)).items == []
    assert (await store.read_events(subject="a\x00")).items == []


async def test_trim_by_id_and_by_age_keeps_the_counter(store: ServiceStore) -> None:
    await _mixed_log(store)  # occurred at T0 (ids 1-3) and T0 + 1 .. 7 s (ids 4-10)
    assert await store.trim_events(keep_after=2) == 2
    assert [e.id for e in await log_of(store)] == list(range(3, 11))
    assert await store.trim_events(keep_after=2) == 0
    assert await store.trim_events(older_than=T0 + timedelta(seconds=3)) == 3  # ids 3 (T0), 4 (1 s), 5 (2 s)
    assert [e.id for e in await log_of(store)] == list(range(6, 11))
    assert await store.trim_events(keep_after=7, older_than=T0) == 2  # either criterion drops
    assert [e.id for e in await log_of(store)] == [8, 9, 10]
    assert (await store.read_events(0, limit=1)).items[0].id == 8  # a cursor older than what is kept: a gap
    assert await store.trim_events(keep_after=100) == 3
    assert await store.read_events() == EventPage(items=[], last_id=10)
    await create(store, "d")
    [event] = await log_of(store)
    assert event.id == 11  # ids are never reused


async def test_ids_grow_strictly_under_concurrent_writes(store: ServiceStore) -> None:
    """Creates, contacts that flap the status, deletes: every successful write's events, ids 1..n without a gap."""
    for i in range(10):
        await create(store, f"s{i}")

    async def flap(slug: str) -> int:
        appended = 0
        for n in range(1, 7):
            await asyncio.sleep(0)
            touched = await store.touch_logged(slug, contact(n, S.DEGRADED if n % 2 else S.ACTIVE))
            appended += touched.topic is not None
        return appended

    async def churn(i: int) -> int:
        await asyncio.sleep(0)
        record = make_record(f"n{i}")
        await store.create(record, first_version(record), events=[registered(record)])
        draft = service_draft(Topic.SERVICE_DEREGISTERED, record, T0, previous_status=S.ACTIVE)
        return 1 + await store.delete(f"n{i}", events=[draft])

    counts = await asyncio.gather(*(flap(f"s{i}") for i in range(10)), *(churn(i) for i in range(10)))
    events = await log_of(store)
    assert [e.id for e in events] == list(range(1, 10 + sum(counts) + 1))
    assert sum(counts) == 10 * 6 + 10 * 2
