"""What the contract suite cannot see on the memory store: its due-heap stays bounded without sweeps, and its filter
indexes stay exact under every kind of write."""

from __future__ import annotations

import random
from datetime import timedelta

import msgspec

from litestar_registry.core import states
from litestar_registry.core.models import Contact, Rewrite, ServiceQuery, ServiceStatus
from litestar_registry.store import MemoryServiceStore
from litestar_registry.store.filters import matches
from tests.records import T0, first_version, make_record


async def test_pings_without_sweeps_keep_the_due_heap_bounded_and_the_sweep_exact() -> None:
    store = MemoryServiceStore()
    for slug in ("a", "b", "c"):
        record = make_record(slug)
        await store.create(record, first_version(record))
    for i in range(1, 3_001):  # every ping pushes an entry; only a sweep would pop the superseded ones
        at = T0 + timedelta(seconds=i * 0.001)
        contact = Contact(at=at, status=ServiceStatus.ACTIVE, from_statuses=states.LIVE)
        assert await store.touch("abc"[i % 3], contact) is not None
    assert len(store._due) <= 2 * 3 + 64 + 1
    # After the compactions the sweep still claims exactly the due records, once each.
    records = [await store.get(slug) for slug in "abc"]
    last = max(record.last_seen_at for record in records if record is not None)
    changed = await store.sweep_due(last + timedelta(seconds=31), states.advance)
    assert sorted(after.slug for _, after in changed) == ["a", "b", "c"]
    assert {after.status for _, after in changed} == {ServiceStatus.DEGRADED}
    assert await store.sweep_due(last + timedelta(seconds=31), states.advance) == []


async def test_filter_indexes_follow_every_write_and_answer_as_a_full_scan_would() -> None:
    """Random creates, data writes (tags, capabilities, status), contacts, sweeps and deletes: every filtered page,
    read through the indexes, is what a scan of every record with the shared filter semantics finds."""
    rng = random.Random(7)
    store = MemoryServiceStore()
    labels = ("a", "b", "c", "nomatch")
    for step in range(600):
        slug = f"svc-{rng.randrange(40):02d}"
        current = await store.get(slug)
        tags = tuple(rng.sample(labels[:3], rng.randrange(3)))
        caps = tuple(rng.sample(labels[:3], rng.randrange(3)))
        at = T0 + timedelta(seconds=step)
        if current is None:
            record = make_record(slug, at=at, tags=tags, capabilities=caps)
            await store.create(record, first_version(record))
        elif rng.random() < 0.15:
            await store.delete(slug)
        elif rng.random() < 0.5:
            status = rng.choice([ServiceStatus.ACTIVE, ServiceStatus.PENDING, ServiceStatus.REJECTED, None])
            changed = msgspec.structs.replace(current, tags=tags, capabilities=caps)
            await store.replace(changed, expected_revision=current.revision, rewrite=Rewrite(status=status))
        elif rng.random() < 0.5:
            await store.touch(slug, Contact(at=at, status=ServiceStatus.DEGRADED, from_statuses=states.LIVE))
        else:
            await store.sweep_due(at + timedelta(seconds=200), states.advance)
        everything = [r for r in [await store.get(f"svc-{i:02d}") for i in range(40)] if r is not None]
        for query in (
            ServiceQuery(tag=rng.choice(labels), limit=5),
            ServiceQuery(capability=rng.choice(labels), tag=rng.choice(labels), limit=5),
            ServiceQuery(statuses=frozenset({rng.choice(list(ServiceStatus))}), limit=5),
            ServiceQuery(statuses=frozenset({ServiceStatus.ACTIVE, ServiceStatus.DEGRADED}), tag="a", limit=5),
        ):
            expected = [r.slug for r in everything if matches(r, query)]
            found: list[str] = []
            after = None
            while True:
                page = await store.find(msgspec.structs.replace(query, after=after))
                found += [r.slug for r in page.items]
                if page.next_after is None:
                    break
                after = page.next_after
            assert found == expected, (step, query)
