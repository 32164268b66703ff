"""The store protocol: everything the registry core needs from persistence, and nothing about HTTP.

Every backend (memory, SQLAlchemy, Redis) implements :class:`ServiceStore` and passes the one contract suite in
``tests/contract``. Two rules hold on every backend:

* each write bumps ``revision`` by one, and the conditional writes (``replace``, ``delete`` with a revision,
  ``touch``, ``sweep_due``) decide atomically in the store, so several app instances sharing one store never both
  win the same race;
* the hot paths are cheap: ``touch`` is one round trip, and ``sweep_due`` costs what is due, not how many services
  exist (an index on ``next_check_at``, a sorted set in Redis).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Self

from litestar_registry.core.models import Contact, Page, ServiceQuery, ServiceRecord, VersionEntry

__all__ = ("Advance", "ServiceStore")

Advance = Callable[[ServiceRecord, datetime], ServiceRecord]
"""The core's time step: the record as silence leaves it at the given instant."""


class ServiceStore(ABC):
    """Persistence for service records and their version history."""

    async def open(self) -> None:  # noqa: B027 - optional hook, most stores need nothing
        """Acquire connections (and, where configured, create the schema). Called once at app startup."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release every connection. Called once at app shutdown; the store is unusable afterwards."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @abstractmethod
    async def create(self, record: ServiceRecord, history: VersionEntry) -> ServiceRecord:
        """Insert a new service and its first history entry, together.

        Returns:
            The stored record (``revision`` 1).

        Raises:
            ServiceExists: the slug is taken, whatever the status of the record that holds it.
        """

    @abstractmethod
    async def replace(
        self, record: ServiceRecord, *, expected_revision: int, history: VersionEntry | None = None
    ) -> ServiceRecord:
        """Overwrite the record with ``record.slug`` if its revision is still ``expected_revision``.

        ``history``, when given, is appended in the same atomic write.

        Returns:
            The stored record, whose ``revision`` is ``expected_revision + 1``.

        Raises:
            ServiceNotFound: no record has that slug.
            StaleWrite: the record's revision is no longer ``expected_revision``; nothing was written.
        """

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
    async def delete(self, slug: str, *, expected_revision: int | None = None) -> bool:
        """Remove the record and its history; with ``expected_revision``, only if the revision still matches.

        Returns:
            Whether a record was removed.
        """

    @abstractmethod
    async def touch(self, slug: str, contact: Contact) -> ServiceRecord | None:
        """Apply a heartbeat or ping in one atomic round trip.

        Only when the record's status is in ``contact.from_statuses``, ``contact.at < expires_at`` and (when
        ``contact.account`` is set) the record's ``account`` equals it: set the status
        to ``contact.status``, ``failure_count`` to 0, ``last_seen_at`` to ``contact.at``, ``deadline_at`` and
        ``next_check_at`` to ``contact.at + ttl``, ``expires_at`` to ``contact.at + ttl * expiry_windows``, ``health``
        to ``contact.health`` when given, and bump the revision. ``updated_at`` does not change: contact is not data.

        Returns:
            The updated record, or ``None`` when nothing matched (no such slug, or not in a state that takes contact).
        """

    @abstractmethod
    async def versions(self, slug: str) -> list[VersionEntry]:
        """Return the version history of ``slug``, oldest first (empty for an unknown slug)."""

    @abstractmethod
    async def sweep_due(
        self, now: datetime, advance: Advance, *, limit: int = 100
    ) -> list[tuple[ServiceRecord, ServiceRecord]]:
        """Claim up to ``limit`` records whose ``next_check_at <= now``, earliest first, and store ``advance(r, now)``.

        Each due record is claimed by one caller only, even with several app instances sweeping one store: a record
        changed by someone else since it was read is skipped, not overwritten. Records that ``advance`` leaves
        unchanged are not written.

        Returns:
            ``(before, after)`` for every record this call changed.
        """
