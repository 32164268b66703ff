"""An in-process store: for tests, demos and single-instance apps that need no persistence."""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

import msgspec

from litestar_registry.core.errors import ServiceExists, ServiceNotFound, StaleWrite
from litestar_registry.core.events import (
    ChangeEvent,
    EventDraft,
    EventPage,
    Topic,
    contact_topic,
    service_draft,
    sweep_topic,
    with_status,
)
from litestar_registry.core.models import (
    Contact,
    Page,
    Rewrite,
    ServiceQuery,
    ServiceRecord,
    VersionEntry,
    VersionPage,
)
from litestar_registry.core.ports import Advance, ServiceStore, Touched
from litestar_registry.core.states import LIVE
from litestar_registry.store.filters import matches

__all__ = ("MemoryServiceStore",)


Label = tuple[str, str]
"""An index key: ``("status", value)``, ``("tag", value)`` or ``("capability", value)``."""


def _labels(record: ServiceRecord) -> set[Label]:
    return {
        ("status", record.status.value),
        *(("tag", tag) for tag in record.tags),
        *(("capability", capability) for capability in record.capabilities),
    }


_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder(dict[str, Any]).decode


class _Logged(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A change-log entry as the memory store keeps it: the payload packed (msgpack), a third of the size of its dict.

    The log holds up to ``events_retention_count`` entries (100,000 by default) beside the records; packed, an entry
    takes about 330 bytes of the heap instead of about 600 as a tree of dicts, and the collector never walks it.
    """

    id: int
    topic: Topic
    occurred_at: datetime
    subject: str
    data: bytes
    tenant: str | None

    def opened(self) -> ChangeEvent:
        """The entry as the log hands it out."""
        return ChangeEvent(
            id=self.id,
            topic=self.topic,
            occurred_at=self.occurred_at,
            subject=self.subject,
            data=_unpack(self.data),
            tenant=self.tenant,
        )


class MemoryServiceStore(ServiceStore):
    """Dicts, a sorted slug list for cursor pages, and a heap on ``next_check_at`` so a sweep costs what is due.

    Filters use indexes as on the other stores: a sorted slug list per status, tag and capability, so a filtered page
    walks only the slugs of its most selective filter (a tag that matches nothing costs nothing). Text search (``q``)
    scans, bounded by the page: it stops once the page is full.

    Every method runs without awaiting in between, so each is atomic on the event loop (and never yields to it): the
    change log is a list appended in the same step as the record, its ids consecutive from a counter, so the event
    with id ``n`` sits at index ``n - first id kept``. Retention drops from the left.
    """

    def __init__(self) -> None:
        self._records: dict[str, ServiceRecord] = {}
        self._history: dict[str, list[VersionEntry]] = {}
        self._dropped: dict[str, int] = {}
        """How many of a slug's oldest history entries were dropped beyond the limit: positions stay stable."""
        self._slugs: list[str] = []
        self._due: list[tuple[datetime, str, int]] = []
        """Heap of (next_check_at, slug, contact_revision); entries whose contact revision is stale are dropped
        lazily."""
        self._index: dict[Label, list[str]] = {}
        """Sorted slugs per status, tag and capability."""
        self._events: list[_Logged] = []
        self._last_id = 0

    def _reindex(self, slug: str, before: set[Label], after: set[Label]) -> None:
        for label in before - after:
            slugs = self._index[label]
            del slugs[bisect.bisect_left(slugs, slug)]
            if not slugs:
                del self._index[label]
        for label in after - before:
            bisect.insort(self._index.setdefault(label, []), slug)

    def _log(self, drafts: Iterable[EventDraft]) -> None:
        """Append ``drafts`` to the change log, numbered from the counter (call in the same step as the change)."""
        for draft in drafts:
            self._last_id += 1
            self._events.append(
                _Logged(
                    id=self._last_id,
                    topic=draft.topic,
                    occurred_at=draft.occurred_at,
                    subject=draft.subject,
                    data=_pack(draft.data),
                    tenant=draft.tenant,
                )
            )

    def append_events(self, drafts: Iterable[EventDraft]) -> None:
        """Append ``drafts`` to this store's log for another writer that shares it (the provisioning read model).

        Synchronous, like every change here: call it in the same step of the event loop as the change it records, and
        the ids stay one sequence with the registry's own events.
        """
        self._log(drafts)

    def _put(self, record: ServiceRecord) -> ServiceRecord:
        previous = self._records.get(record.slug)
        if previous is None:
            bisect.insort(self._slugs, record.slug)
            self._reindex(record.slug, set(), _labels(record))
        elif (previous.status, previous.tags, previous.capabilities) != (
            record.status,
            record.tags,
            record.capabilities,
        ):
            self._reindex(record.slug, _labels(previous), _labels(record))
        self._records[record.slug] = record
        schedule = (record.next_check_at, record.contact_revision)
        if record.next_check_at is not None and (
            previous is None or schedule != (previous.next_check_at, previous.contact_revision)
        ):
            heapq.heappush(self._due, (record.next_check_at, record.slug, record.contact_revision))
            if len(self._due) > 2 * len(self._records) + 64:
                self._compact()
        return record

    def _compact(self) -> None:
        """Drop superseded heap entries, linearly but at most once per ``len(records)`` pushes.

        Every contact pushes an entry and only a sweep pops them, so without this an instance that never sweeps would
        grow the heap by one entry per ping.
        """
        self._due = [
            (record.next_check_at, slug, record.contact_revision)
            for slug, record in self._records.items()
            if record.next_check_at is not None
        ]
        heapq.heapify(self._due)

    async def create(
        self, record: ServiceRecord, history: VersionEntry, *, events: Sequence[EventDraft] = ()
    ) -> ServiceRecord:
        if record.slug in self._records:
            raise ServiceExists(f"service '{record.slug}' is already registered")
        self._history[record.slug] = [history]
        self._dropped[record.slug] = 0
        self._log(events)
        return self._put(msgspec.structs.replace(record, revision=1, contact_revision=1))

    async def replace(
        self,
        record: ServiceRecord,
        *,
        expected_revision: int,
        history: VersionEntry | None = None,
        rewrite: Rewrite | None = None,
        history_limit: int | None = None,
        events: Sequence[EventDraft] = (),
    ) -> ServiceRecord:
        rewrite = rewrite or Rewrite()
        current = self._records.get(record.slug)
        if current is None:
            raise ServiceNotFound(f"service '{record.slug}' is not registered")
        if current.revision != expected_revision or (
            rewrite.from_statuses is not None and current.status not in rewrite.from_statuses
        ):
            raise StaleWrite(f"service '{record.slug}' changed concurrently")
        status = rewrite.status or current.status
        contact: dict[str, Any] = {
            name: getattr(current, name)
            for name in ("last_seen_at", "deadline_at", "expires_at", "next_check_at", "failure_count", "health")
        }
        if rewrite.restart_at is not None:
            seen = max(current.last_seen_at, rewrite.restart_at)
            contact.update(
                last_seen_at=seen,
                deadline_at=seen + record.ttl,
                expires_at=seen + record.ttl * record.expiry_windows,
                next_check_at=seen + record.ttl,
                failure_count=0,
                health=None if rewrite.clear_health else current.health,
            )
        if status not in LIVE:
            contact["next_check_at"] = None
        moved = rewrite.status is not None or rewrite.restart_at is not None
        if history is not None:
            entries = self._history.setdefault(record.slug, [])
            entries.append(history)
            if history_limit is not None and len(entries) > history_limit:
                excess = len(entries) - history_limit
                del entries[:excess]
                self._dropped[record.slug] = self._dropped.get(record.slug, 0) + excess
        stored = msgspec.structs.replace(
            record,
            status=status,
            **contact,
            revision=expected_revision + 1,
            contact_revision=current.contact_revision + moved,
        )
        self._log(with_status(draft, status) for draft in events)
        return self._put(stored)

    async def get(self, slug: str) -> ServiceRecord | None:
        return self._records.get(slug)

    def _candidates(self, query: ServiceQuery) -> list[str]:
        """The sorted slugs a page must walk: those of the query's most selective indexed filter, or every slug."""
        lists = [self._slugs]
        if query.tag is not None:
            lists.append(self._index.get(("tag", query.tag), []))
        if query.capability is not None:
            lists.append(self._index.get(("capability", query.capability), []))
        if query.statuses is not None and len(query.statuses) == 1:
            (status,) = query.statuses
            lists.append(self._index.get(("status", status.value), []))
        return min(lists, key=len)

    async def find(self, query: ServiceQuery) -> Page:
        slugs = self._candidates(query)
        start = bisect.bisect_right(slugs, query.after) if query.after is not None else 0
        items: list[ServiceRecord] = []
        for position in range(start, len(slugs)):
            record = self._records[slugs[position]]
            if not matches(record, query):
                continue
            if len(items) == query.limit:
                return Page(items=items, next_after=items[-1].slug)
            items.append(record)
        return Page(items=items)

    async def delete(
        self, slug: str, *, expected_revision: int | None = None, events: Sequence[EventDraft] = ()
    ) -> bool:
        current = self._records.get(slug)
        if current is None or (expected_revision is not None and current.revision != expected_revision):
            return False
        self._log(events)
        del self._records[slug]
        self._reindex(slug, _labels(current), set())
        self._history.pop(slug, None)
        self._dropped.pop(slug, None)
        del self._slugs[bisect.bisect_left(self._slugs, slug)]
        return True

    async def touch_logged(self, slug: str, contact: Contact) -> Touched:
        current = self._records.get(slug)
        if (
            current is None
            or current.status not in contact.from_statuses
            or contact.at >= current.expires_at
            or (contact.account is not None and current.account != contact.account)
        ):
            return Touched(None, None)
        if contact.at < current.last_seen_at:
            return Touched(current, None)  # an older contact than the one stored: time never goes backwards
        deadline = contact.at + current.ttl
        stored = self._put(
            msgspec.structs.replace(
                current,
                status=contact.status,
                failure_count=0,
                last_seen_at=contact.at,
                deadline_at=deadline,
                next_check_at=deadline,
                expires_at=contact.at + current.ttl * current.expiry_windows,
                health=contact.health if contact.health is not None else current.health,
                contact_revision=current.contact_revision + 1,
            )
        )
        topic = contact_topic(current.status, stored.status)
        if topic is not None:
            self._log([service_draft(topic, stored, contact.at, previous_status=current.status)])
        return Touched(stored, topic)

    async def version_page(self, slug: str, *, after: int | None = None, limit: int | None = None) -> VersionPage:
        entries = self._history.get(slug, [])
        dropped = self._dropped.get(slug, 0)
        start = 0 if after is None else max(0, after + 1 - dropped)
        stop = len(entries) if limit is None else min(len(entries), start + limit)
        more = stop < len(entries)
        return VersionPage(items=entries[start:stop], next_after=dropped + stop - 1 if more else None)

    async def sweep_due(
        self, now: datetime, advance: Advance, *, limit: int = 100
    ) -> list[tuple[ServiceRecord, ServiceRecord]]:
        changed: list[tuple[ServiceRecord, ServiceRecord]] = []
        while self._due and self._due[0][0] <= now and len(changed) < limit:
            _, slug, contact_revision = heapq.heappop(self._due)
            before = self._records.get(slug)
            if before is None or before.contact_revision != contact_revision:
                continue  # superseded by a later write, which pushed its own entry
            advanced = advance(before, now)
            if advanced == before:
                continue
            after = msgspec.structs.replace(
                before,
                status=advanced.status,
                failure_count=advanced.failure_count,
                next_check_at=advanced.next_check_at,
                contact_revision=before.contact_revision + 1,
            )
            changed.append((before, self._put(after)))
            topic = sweep_topic(before.status, after.status)
            if topic is not None:
                self._log([service_draft(topic, after, now, previous_status=before.status)])
        return changed

    async def read_events(
        self,
        after: int = 0,
        *,
        limit: int = 100,
        topics: Collection[Topic] | None = None,
        subject: str | None = None,
    ) -> EventPage:
        items: list[ChangeEvent] = []
        if self._events and limit > 0:
            wanted = None if topics is None else frozenset(Topic(topic) for topic in topics)
            for index in range(max(0, after + 1 - self._events[0].id), len(self._events)):
                event = self._events[index]
                if (wanted is None or event.topic in wanted) and (subject is None or event.subject == subject):
                    items.append(event.opened())
                    if len(items) == limit:
                        break
        return EventPage(items=items, last_id=self._last_id)

    async def trim_events(self, *, keep_after: int | None = None, older_than: datetime | None = None) -> int:
        events = self._events
        drop = 0
        if keep_after is not None and events:
            drop = min(len(events), max(0, keep_after + 1 - events[0].id))
        if older_than is not None:
            while drop < len(events) and events[drop].occurred_at < older_than:
                drop += 1
        del events[:drop]
        return drop
