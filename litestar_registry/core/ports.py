"""The store protocol: everything the registry core needs from persistence, and nothing about HTTP.

It belongs to the core, which imports nothing from ``litestar_registry.store``: the backends (memory, SQLAlchemy,
Redis) implement :class:`ServiceStore` and pass the one contract suite in ``tests/contract``. Rules that hold on every
backend:

* **Data apart from contact.** ``revision`` counts data writes (``create``, ``replace``); ``replace`` and ``delete``
  compare-and-set on it. Contact (``touch``) and sweeps (``sweep_due``) never move it, so a ping or heartbeat never
  makes a data write fail. ``contact_revision`` counts writes to the status and the contact state; a sweep claims a
  record on it, so it never overwrites a contact, a status a data write set, or another sweeper's work.
* **Contact never goes backwards.** ``touch`` with a time older than the stored ``last_seen_at`` changes nothing,
  and a data write that restarts the clock takes the later of the two times.
* **Atomic.** Every write decides in the store (one SQL transaction or conditional statement, one Redis script, one
  step of the event loop), so several app instances sharing one store never both win the same race.
* **Cheap hot paths.** ``touch`` is one round trip; ``sweep_due`` costs what is due, not how many services exist.
* **Bounded history.** An append drops the oldest entries beyond ``history_limit`` in the same atomic write.
* **The change log is the outbox.** A store is also the :class:`~litestar_registry.core.events.EventLog` of its
  records: ``create``, ``replace`` and ``delete`` append the events they are given, ``touch`` a contact's and
  ``sweep_due`` a sweep's transitions, each in the same atomic write as the change and only when the change is
  written. Ids grow strictly, in commit order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import NamedTuple, Self

from litestar_registry.core.events import EventDraft, EventLog, Topic
from litestar_registry.core.models import (
    Contact,
    Page,
    Registration,
    Rewrite,
    ServiceQuery,
    ServiceRecord,
    ServiceStatus,
    VersionEntry,
    VersionPage,
)

__all__ = ("Advance", "Refreshed", "ServiceStore", "Touched")

Advance = Callable[[ServiceRecord, datetime], ServiceRecord]
"""The core's time step: the record as silence leaves it at the given instant.

It may change only ``status``, ``failure_count`` and ``next_check_at``; a store writes back only those."""


class Touched(NamedTuple):
    """What a contact did (:meth:`ServiceStore.touch_logged`)."""

    record: ServiceRecord | None
    """The record as stored now, or ``None`` when nothing matched (as :meth:`ServiceStore.touch` answers)."""
    topic: Topic | None
    """The topic of the event the contact appended (``service.recovered``, ``service.degraded``), if it moved the
    status; ``None`` for the steady state, which appends nothing."""


class Refreshed(NamedTuple):
    """What a re-registration that changes no data did (:meth:`ServiceStore.refresh`)."""

    record: ServiceRecord | None
    """The record as stored after the refresh, or ``None`` when the store wrote nothing."""
    current: ServiceRecord | None
    """When nothing was written: the record as stored (``None`` for an unknown slug), for the caller's general path."""


class ServiceStore(EventLog, ABC):
    """Persistence for service records, their version history and the change log of both."""

    async def open(self) -> None:
        """Acquire connections (and, where configured, create the schema). Called once at app startup."""

    async def close(self) -> None:
        """Release every connection. Called once at app shutdown; the store is unusable afterwards."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @abstractmethod
    async def create(
        self, record: ServiceRecord, history: VersionEntry, *, events: Sequence[EventDraft] = ()
    ) -> ServiceRecord:
        """Insert a new service, its first history entry and ``events``, together.

        Returns:
            The stored record (``revision`` and ``contact_revision`` 1).

        Raises:
            ServiceExists: the slug is taken, whatever the status of the record that holds it.
        """

    @abstractmethod
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
        """A data write: overwrite the data of ``record.slug`` if its ``revision`` is still ``expected_revision``.

        Written from ``record``: every field but the status and the contact state (``last_seen_at``, ``deadline_at``,
        ``expires_at``, ``next_check_at``, ``failure_count``, ``health``), which contact and sweeps move concurrently.
        Those are kept as stored unless ``rewrite`` (default ``Rewrite()``: any status, keep both) says otherwise, and
        then decided in the same atomic write:

        * ``rewrite.from_statuses``: the stored status must be one of them, else nothing is written (``StaleWrite``);
        * ``rewrite.status``: the status to write, instead of keeping the stored one;
        * ``rewrite.restart_at``: restart the clock: ``last_seen_at`` becomes ``max(stored last_seen_at, restart_at)``,
          ``deadline_at`` and ``expires_at`` follow from it with ``record``'s TTL and expiry windows, ``failure_count``
          becomes 0, and ``health`` is kept (``None`` with ``rewrite.clear_health``).

        ``next_check_at`` is ``None`` whenever the resulting status is not live (active, degraded); otherwise it is the
        new deadline when the clock restarts, else kept. ``contact_revision`` grows by one when the status is written
        or the clock restarts, and only then. A change of TTL or expiry windows must restart the clock.

        ``history``, when given, is appended in the same atomic write, which also drops the oldest entries beyond
        ``history_limit`` (``None``: no limit). So are ``events``, each saying the status as stored (see
        :func:`~litestar_registry.core.events.with_status`): a write that keeps the status learns it only there.

        Returns:
            The record as stored now (``revision`` is ``expected_revision + 1``; status and contact state as decided).

        Raises:
            ServiceNotFound: no record has that slug.
            StaleWrite: the revision is no longer ``expected_revision``, or the stored status is not in
                ``rewrite.from_statuses``; nothing was written.
        """

    async def refresh(
        self,
        registration: Registration,
        *,
        at: datetime,
        from_statuses: frozenset[ServiceStatus],
        account: str | None = None,
    ) -> Refreshed:
        """A re-registration that changes no data, in one round trip where the store can decide it (the hot upsert).

        ``registration`` has its TTL and expiry windows resolved (neither ``None``). When the record of its slug
        holds exactly its data (every field of ``registration`` equal), its status is one of ``from_statuses``, it is
        not live past its expiry (a live record needs ``at < expires_at``) and ``account`` is ``None`` or the record's
        account is ``None`` or ``account``: restart its clock at ``at`` as ``replace(record,
        expected_revision=record.revision, rewrite=Rewrite(from_statuses=from_statuses, restart_at=at))`` would,
        appending no history and no event, and return ``Refreshed(stored, None)``. Otherwise write nothing and return
        ``Refreshed(None, get(slug))``. A store may always answer the latter (this default does, with one read); the
        caller then takes its general path, so a store that cannot tell equal data costs nothing more.
        """
        return Refreshed(None, await self.get(registration.slug))

    @abstractmethod
    async def get(self, slug: str) -> ServiceRecord | None:
        """Return the record with ``slug``, or ``None``."""

    @abstractmethod
    async def find(self, query: ServiceQuery) -> Page:
        """Return one page of records matching every filter of ``query``, in slug order.

        ``query.after`` is an exclusive lower bound on the slug. ``next_after`` is set only when more records match
        beyond the page.
        """

    @abstractmethod
    async def delete(
        self, slug: str, *, expected_revision: int | None = None, events: Sequence[EventDraft] = ()
    ) -> bool:
        """Remove the record and its history; with ``expected_revision``, only if the (data) revision still matches.

        ``events`` are appended in the same atomic write, only when a record is removed.

        Contact since the revision was read does not prevent the removal.

        Returns:
            Whether a record was removed.
        """

    async def touch(self, slug: str, contact: Contact) -> ServiceRecord | None:
        """Apply a heartbeat or ping in one atomic round trip: :meth:`touch_logged` without the topic."""
        return (await self.touch_logged(slug, contact)).record

    @abstractmethod
    async def touch_logged(self, slug: str, contact: Contact) -> Touched:
        """Apply a heartbeat or ping in one atomic round trip, appending the event of a status it moves.

        Matches only when the record's status is in ``contact.from_statuses``, ``contact.at < expires_at`` and (when
        ``contact.account`` is set) the record's ``account`` equals it. Then, unless ``contact.at`` is older than the
        stored ``last_seen_at`` (contact never goes backwards: such a contact changes nothing): set the status to
        ``contact.status``, ``failure_count`` to 0, ``last_seen_at`` to ``contact.at``, ``deadline_at`` and
        ``next_check_at`` to ``contact.at + ttl``, ``expires_at`` to ``contact.at + ttl * expiry_windows``, ``health``
        to ``contact.health`` when given, and bump ``contact_revision``. ``revision`` and ``updated_at`` do not
        change: contact is not data.

        The store decides the transition in the same atomic write: when the status it replaces differs from
        ``contact.status`` and :func:`~litestar_registry.core.events.contact_topic` names a topic for the pair, it
        appends that event (:func:`~litestar_registry.core.events.service_draft` of the record as stored, at
        ``contact.at``). Contact that keeps the status appends nothing and stays one round trip.

        Returns:
            The record as stored now (updated, or as it was for an older contact), or ``None`` when nothing matched
            (no such slug, or not in a state that takes contact); and the topic appended, if any.
        """

    @abstractmethod
    async def version_page(self, slug: str, *, after: int | None = None, limit: int | None = None) -> VersionPage:
        """Return the version history of ``slug``, oldest first, a page at a time (empty for an unknown slug).

        ``after`` is a position a previous page handed out as ``next_after`` (exclusive); entries dropped since
        beyond the history limit are simply not returned. ``limit`` bounds the page (``None``: every entry).
        ``next_after`` is set only when more entries follow the page.
        """

    async def versions(self, slug: str) -> list[VersionEntry]:
        """Every stored entry of the version history of ``slug``, oldest first (empty for an unknown slug)."""
        return (await self.version_page(slug)).items

    @abstractmethod
    async def sweep_due(
        self, now: datetime, advance: Advance, *, limit: int = 100
    ) -> list[tuple[ServiceRecord, ServiceRecord]]:
        """Claim up to ``limit`` records whose ``next_check_at <= now``, earliest first, and store ``advance(r, now)``.

        Only ``status``, ``failure_count`` and ``next_check_at`` are written, and ``contact_revision`` grows by one.
        Each due record is claimed by one caller only, even with several app instances sweeping one store: the write
        is conditional on the ``contact_revision`` read, so a record whose contact state or status moved since it
        was read (contact, a data write that set the status, another sweeper) is skipped, not overwritten. A data
        write that keeps the status does not move ``contact_revision`` and never spoils a claim. Records that
        ``advance`` leaves unchanged are not written. For each record written, the event of
        :func:`~litestar_registry.core.events.sweep_topic` (``service.degraded``, ``service.expired``), if any, is
        appended in the same conditional write, at ``now``: a record another caller claimed appends nothing here.

        Returns:
            ``(before, after)`` for every record this call changed, ``after`` as stored.
        """
