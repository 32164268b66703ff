"""An in-process store: for tests, demos and single-instance apps that need no persistence."""

from __future__ import annotations

import bisect
import heapq
from datetime import datetime

import msgspec

from litestar_registry.core.errors import ServiceExists, ServiceNotFound, StaleWrite
from litestar_registry.core.models import Contact, Page, ServiceQuery, ServiceRecord, VersionEntry
from litestar_registry.store.base import Advance, ServiceStore
from litestar_registry.store.filters import matches

__all__ = ("MemoryServiceStore",)


class MemoryServiceStore(ServiceStore):
    """Dicts, a sorted slug list for cursor pages, and a heap on ``next_check_at`` so a sweep costs what is due.

    Every method runs without awaiting in between, so each is atomic on the event loop.
    """

    def __init__(self) -> None:
        self._records: dict[str, ServiceRecord] = {}
        self._history: dict[str, list[VersionEntry]] = {}
        self._slugs: list[str] = []
        self._due: list[tuple[datetime, str, int]] = []
        """Heap of (next_check_at, slug, revision); entries whose revision is stale are dropped lazily."""

    def _put(self, record: ServiceRecord) -> ServiceRecord:
        if record.slug not in self._records:
            bisect.insort(self._slugs, record.slug)
        self._records[record.slug] = record
        if record.next_check_at is not None:
            heapq.heappush(self._due, (record.next_check_at, record.slug, record.revision))
            if len(self._due) > 2 * len(self._records) + 64:
                self._compact()
        return record

    def _compact(self) -> None:
        """Drop superseded heap entries, linearly but at most once per ``len(records)`` pushes.

        Every contact pushes an entry and only a sweep pops them, so without this an instance that never sweeps would
        grow the heap by one entry per ping.
        """
        self._due = [
            (record.next_check_at, slug, record.revision)
            for slug, record in self._records.items()
            if record.next_check_at is not None
        ]
        heapq.heapify(self._due)

    async def create(self, record: ServiceRecord, history: VersionEntry) -> ServiceRecord:
        if record.slug in self._records:
            raise ServiceExists(f"service '{record.slug}' is already registered")
        self._history[record.slug] = [history]
        return self._put(msgspec.structs.replace(record, revision=1))

    async def replace(
        self, record: ServiceRecord, *, expected_revision: int, history: VersionEntry | None = None
    ) -> ServiceRecord:
        current = self._records.get(record.slug)
        if current is None:
            raise ServiceNotFound(f"service '{record.slug}' is not registered")
        if current.revision != expected_revision:
            raise StaleWrite(f"service '{record.slug}' changed concurrently")
        if history is not None:
            self._history.setdefault(record.slug, []).append(history)
        return self._put(msgspec.structs.replace(record, revision=expected_revision + 1))

    async def get(self, slug: str) -> ServiceRecord | None:
        return self._records.get(slug)

    async def find(self, query: ServiceQuery) -> Page:
        start = bisect.bisect_right(self._slugs, query.after) if query.after is not None else 0
        items: list[ServiceRecord] = []
        for slug in self._slugs[start:]:
            record = self._records[slug]
            if not matches(record, query):
                continue
            if len(items) == query.limit:
                return Page(items=items, next_after=items[-1].slug)
            items.append(record)
        return Page(items=items)

    async def delete(self, slug: str, *, expected_revision: int | None = None) -> bool:
        current = self._records.get(slug)
        if current is None or (expected_revision is not None and current.revision != expected_revision):
            return False
        del self._records[slug]
        self._history.pop(slug, None)
        del self._slugs[bisect.bisect_left(self._slugs, slug)]
        return True

    async def touch(self, slug: str, contact: Contact) -> ServiceRecord | None:
        current = self._records.get(slug)
        if (
            current is None
            or current.status not in contact.from_statuses
            or contact.at >= current.expires_at
            or (contact.account is not None and current.account != contact.account)
        ):
            return None
        deadline = contact.at + current.ttl
        return self._put(
            msgspec.structs.replace(
                current,
                status=contact.status,
                failure_count=0,
                last_seen_at=contact.at,
                deadline_at=deadline,
                next_check_at=deadline,
                expires_at=contact.at + current.ttl * current.expiry_windows,
                health=contact.health if contact.health is not None else current.health,
                revision=current.revision + 1,
            )
        )

    async def versions(self, slug: str) -> list[VersionEntry]:
        return list(self._history.get(slug, ()))

    async def sweep_due(
        self, now: datetime, advance: Advance, *, limit: int = 100
    ) -> list[tuple[ServiceRecord, ServiceRecord]]:
        changed: list[tuple[ServiceRecord, ServiceRecord]] = []
        while self._due and self._due[0][0] <= now and len(changed) < limit:
            _, slug, revision = heapq.heappop(self._due)
            before = self._records.get(slug)
            if before is None or before.revision != revision:
                continue  # superseded by a later write, which pushed its own entry
            after = advance(before, now)
            if after != before:
                changed.append((before, self._put(msgspec.structs.replace(after, revision=before.revision + 1))))
        return changed
