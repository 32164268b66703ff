"""What the contract suite cannot see on the memory store: its due-heap stays bounded without sweeps."""

from __future__ import annotations

from datetime import timedelta

from litestar_registry.core import states
from litestar_registry.core.models import Contact, ServiceStatus
from litestar_registry.store import MemoryServiceStore
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
