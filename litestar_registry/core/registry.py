"""The Registry: every rule about services, over any store, with no HTTP in sight.

Both registry dialects (seed 000's ``/registry`` routes and seed 004's TTL routes) are thin adapters over this one
class, so a service registered through one is visible through the other.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

from litestar_registry.core import states
from litestar_registry.core.auth import Principal
from litestar_registry.core.clock import Clock, SystemClock, utc
from litestar_registry.core.errors import (
    AccessDenied,
    InvalidInput,
    ServiceConflict,
    ServiceExists,
    ServiceNotFound,
    StaleWrite,
)
from litestar_registry.core.events import EventDraft, Topic, service_draft, sweep_topic
from litestar_registry.core.models import (
    Contact,
    Entrypoint,
    HealthReport,
    Heartbeat,
    Page,
    Registration,
    Rewrite,
    ServiceQuery,
    ServiceRecord,
    ServiceStatus,
    VersionEntry,
    VersionPage,
)
from litestar_registry.core.ports import ServiceStore
from litestar_registry.core.states import Event
from litestar_registry.core.validation import check_slug, check_storable

__all__ = ("DependentsCheck", "EventsHook", "Registry", "RegistryPolicy")

logger = logging.getLogger("litestar_registry.registry")

S = ServiceStatus
DependentsCheck = Callable[[str], Awaitable[Sequence[str]]]
"""Given a slug, the names of whatever actively depends on it (workflows, a host's subscriptions, ...)."""
EventsHook = Callable[[], Awaitable[None]]
"""Awaited after a write of the core appended events to the change log (to wake whoever follows the log)."""
_WRITE_ATTEMPTS = 8
"""Data writes that lose a race to another data write are retried this often before giving up with a conflict.
Contact never makes one lose: it does not move the data revision."""
_BACKOFF_FIRST_SECONDS = 0.002
_BACKOFF_MAX_SECONDS = 0.05


async def _backoff(attempt: int) -> None:
    """Wait before retry ``attempt + 1`` of a write that lost a race: full jitter, doubling from 2 ms, at most 50 ms.

    Writers that collided spread out instead of colliding again in lockstep.
    """
    ceiling = min(_BACKOFF_MAX_SECONDS, _BACKOFF_FIRST_SECONDS * 2**attempt)
    await asyncio.sleep(random.uniform(0, ceiling))  # jitter, not a secret


class RegistryPolicy(msgspec.Struct, kw_only=True, frozen=True):
    """The registry's rules that a host configures.

    It has no defaults of its own: the defaults are :class:`~litestar_registry.RegistryConfig`'s, and
    ``litestar_registry.plugin.registry_policy`` builds the policy from a config.
    """

    default_ttl_seconds: float
    min_ttl_seconds: float
    max_ttl_seconds: float
    expiry_windows: int
    auto_approve_all: bool
    auto_approve_accounts: frozenset[str]
    auto_approve_slugs: frozenset[str]
    keep_deregistered: bool
    sweep_batch_size: int
    default_page_size: int
    max_page_size: int
    history_limit: int
    """Most version-history entries kept per service; appending beyond it drops the oldest."""
    events_retention_seconds: float
    """How long the change log keeps an event (:meth:`Registry.trim_events`)."""
    events_retention_count: int
    """Most events the change log keeps, the newest (:meth:`Registry.trim_events`)."""


class Registry:
    """Register, update, deregister, heartbeat, ping, approve, list and sweep services."""

    def __init__(
        self,
        store: ServiceStore,
        policy: RegistryPolicy,
        *,
        clock: Clock | None = None,
        dependents_checks: Sequence[DependentsCheck] = (),
        on_events: EventsHook | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock or SystemClock()
        self.dependents_checks = list(dependents_checks)
        self.on_events = on_events
        """Awaited after every write of the core that appended at least one event (touches and sweeps that moved a
        status included); what it raises is logged and swallowed, so a write that succeeded never fails for it."""

    # --- writes -----------------------------------------------------------------------------------------------

    async def register(self, registration: Registration, principal: Principal) -> ServiceRecord:
        """Register a new service (seed 000 POST): a slug held by a live, pending or rejected service is a conflict.

        A slug whose earlier life ended (expired or deregistered) registers afresh.
        """
        record, created = await self._write(registration, principal, allow_update=False)
        assert created
        return record

    async def update(self, registration: Registration, principal: Principal) -> tuple[ServiceRecord, bool]:
        """Re-register an existing service (seed 000 PUT): idempotent; returns the record and whether it changed.

        An identical update writes nothing: no history entry, same ``updated_at``.
        """
        self._validate(registration)
        for attempt in range(_WRITE_ATTEMPTS):
            now = self.clock.now()
            current = await self._get_live_or_pending(registration.slug, now)
            self._check_owner(current, principal)
            states.transition(current.status, Event.UPDATE)
            updated = self._apply(current, registration, principal, now)
            if _same_data(current, updated):
                return current, False
            # The status stays whatever contact and sweeps make it, unless a sweep expired the service meanwhile:
            # then the write fails and the next attempt finds it gone. A new TTL restarts the clock, in the store.
            rewrite = Rewrite(
                from_statuses=states.sources(Event.UPDATE), restart_at=now if _clock_changed(current, updated) else None
            )
            try:
                return await self._replace(current, updated, now, rewrite, _change_events(current, updated, now)), True
            except StaleWrite:
                await _backoff(attempt)
        raise ServiceConflict(f"service '{registration.slug}' is changing too fast to update; retry")

    async def upsert(self, registration: Registration, principal: Principal) -> tuple[ServiceRecord, bool]:
        """Register or replace (seed 004): latest wins, ``registered_at`` is kept; returns whether it was new."""
        return await self._write(registration, principal, allow_update=True)

    async def deregister(
        self, slug: str, principal: Principal, *, reason: str | None = None, force: bool = False
    ) -> ServiceRecord:
        """Remove a service, refused while it has active dependents (an admin may ``force`` it).

        The record is deleted, or kept as ``deregistered`` when the policy says so. Returns the record as it was.
        """
        if force and not principal.is_admin:
            raise AccessDenied("only an admin may force a deregistration")
        check_storable(reason, "reason")
        for attempt in range(_WRITE_ATTEMPTS):
            now = self.clock.now()
            current = await self.store.get(slug)
            if current is None or current.status is S.DEREGISTERED:
                raise ServiceNotFound(f"service '{slug}' is not registered")
            self._check_owner(current, principal)
            dependents = [] if force else await self.dependents(slug)
            if dependents:
                raise ServiceConflict(
                    f"service '{slug}' has {len(dependents)} active dependent(s) and cannot be deregistered",
                    dependents=list(dependents),
                )
            status = states.transition(current.status, Event.DEREGISTER)
            gone = msgspec.structs.replace(current, status=status)
            events = [
                service_draft(
                    Topic.SERVICE_DEREGISTERED,
                    gone,
                    now,
                    previous_status=current.status,
                    by=principal.account,
                    reason=reason,
                )
            ]
            if not self.policy.keep_deregistered:
                if await self.store.delete(slug, expected_revision=current.revision, events=events):
                    await self._announce()
                    return current
                await _backoff(attempt)
                continue
            try:
                await self.store.replace(
                    current, expected_revision=current.revision, rewrite=Rewrite(status=status), events=events
                )
            except (StaleWrite, ServiceNotFound):
                await _backoff(attempt)
                continue
            await self._announce()
            return current
        raise ServiceConflict(f"service '{slug}' is changing too fast to deregister; retry")

    async def heartbeat(self, heartbeat: Heartbeat, principal: Principal) -> tuple[ServiceRecord, bool]:
        """Record a heartbeat; returns the record and whether the reported version differs from the stored one.

        One store round trip when the version is unchanged: the store matches status, expiry and owner itself. A new
        version is a data write, which only another data write can make retry (with backoff), never contact.
        """
        check_storable(heartbeat.health, "")  # the report's fields are the heartbeat's own on the wire
        check_storable(heartbeat.version, "version")
        now = self.clock.now()
        health = heartbeat.health
        if health.reported_at is not None:
            health = msgspec.structs.replace(health, reported_at=utc(health.reported_at))
        event = Event.CONTACT_HEALTHY if health.status == "healthy" else Event.CONTACT_DEGRADED
        record = await self._contact(heartbeat.slug, principal, now, event, health)
        if heartbeat.version is None or heartbeat.version == record.version:
            return record, False
        rewrite = Rewrite(from_statuses=states.LIVE)
        for attempt in range(_WRITE_ATTEMPTS):
            changed = msgspec.structs.replace(record, version=heartbeat.version, updated_at=now)
            events = _change_events(record, changed, now, as_update=False)
            try:
                return await self._replace(record, changed, now, rewrite, events), True
            except StaleWrite:
                await _backoff(attempt)
                record = await self._get_live_or_pending(heartbeat.slug, now)
                if record.version == heartbeat.version:
                    return record, False
        raise ServiceConflict(f"service '{heartbeat.slug}' is changing too fast to record its version; retry")

    async def ping(self, slug: str, principal: Principal | None = None) -> ServiceRecord:
        """A bare keepalive (seed 004): refresh the deadline; 404 for unknown or expired services."""
        return await self._contact(slug, principal, self.clock.now(), Event.CONTACT_HEALTHY, None)

    async def approve(self, slug: str, principal: Principal) -> ServiceRecord:
        """Admin: a pending service becomes active, its first window starting now."""
        return await self._decide(slug, principal, Event.APPROVE)

    async def reject(self, slug: str, principal: Principal) -> ServiceRecord:
        """Admin: a pending service is rejected; it stays invisible to discovery and cannot take contact."""
        return await self._decide(slug, principal, Event.REJECT)

    async def sweep(self) -> list[tuple[ServiceRecord, ServiceRecord]]:
        """Persist what silence did: degrade services that missed a window, expire those past their expiry.

        Claims due services in batches until none is left; each is claimed by one instance only.
        """
        now = self.clock.now()
        changes: list[tuple[ServiceRecord, ServiceRecord]] = []
        while True:
            batch = await self.store.sweep_due(now, states.advance, limit=self.policy.sweep_batch_size)
            changes.extend(batch)
            if len(batch) < self.policy.sweep_batch_size:
                break
        if any(sweep_topic(before.status, after.status) is not None for before, after in changes):
            await self._announce()
        return changes

    async def trim_events(self, now: datetime | None = None) -> int:
        """Apply the change log's retention at ``now`` (default: the clock's); return how many events were dropped.

        Keeps at most ``events_retention_count`` events, the newest, and none older than ``events_retention_seconds``:
        two cuts by index (id, time) in the store, never a scan. The sweeper calls it at every sweep.
        """
        now = now or self.clock.now()
        last = (await self.store.read_events(limit=0)).last_id
        keep_after = last - self.policy.events_retention_count
        older_than = now - timedelta(seconds=self.policy.events_retention_seconds)
        return await self.store.trim_events(keep_after=keep_after if keep_after > 0 else None, older_than=older_than)

    @staticmethod
    def visible(record: ServiceRecord, principal: Principal | None) -> bool:
        """Pending and rejected services are shown to admins and to their own account only."""
        if record.status not in (S.PENDING, S.REJECTED):
            return True
        return principal is not None and (principal.is_admin or principal.account == record.account)

    # --- reads ------------------------------------------------------------------------------------------------

    async def get(self, slug: str) -> ServiceRecord:
        """The service as it stands now (silence applied), whatever its status; 404 if unknown."""
        record = await self.store.get(slug)
        if record is None:
            raise ServiceNotFound(f"service '{slug}' is not registered")
        return states.advance(record, self.clock.now())

    async def get_live(self, slug: str) -> ServiceRecord:
        """The service if it is active or degraded and not silent past its expiry; 404 otherwise."""
        now = self.clock.now()
        record = await self.store.get(slug)
        if record is None or not states.is_live(record, now):
            raise ServiceNotFound(f"service '{slug}' is not registered")
        return states.advance(record, now)

    async def find(self, query: ServiceQuery) -> Page:
        """A page of services as they stand now.

        A status filter is applied again after silence is accounted for, so a page may hold fewer than ``limit``
        services when some expired since the last sweep; follow ``next_after`` until it is ``None``.
        """
        wanted = query.statuses
        if wanted is not None:
            query = msgspec.structs.replace(query, statuses=states.stored_statuses(wanted))
        page = await self.store.find(query)
        now = self.clock.now()
        items = [states.advance(record, now) for record in page.items]
        if wanted is not None:
            items = [record for record in items if record.status in wanted]
        return Page(items=items, next_after=page.next_after)

    async def all_live(self) -> list[ServiceRecord]:
        """Every active or degraded service not silent past its expiry, walking every page."""
        found: list[ServiceRecord] = []
        after: str | None = None
        while True:
            page = await self.find(ServiceQuery(statuses=states.LIVE, after=after, limit=self.policy.max_page_size))
            found.extend(page.items)
            if page.next_after is None:
                return found
            after = page.next_after

    async def versions(self, slug: str, *, after: int | None = None, limit: int | None = None) -> VersionPage:
        """A page of the version history of a known service, oldest first (at most ``history_limit`` entries kept).

        ``after`` is the ``next_after`` of the previous page; without ``limit``, the page holds every entry.
        """
        await self.get(slug)
        return await self.store.version_page(slug, after=after, limit=limit)

    async def entrypoints(
        self,
        *,
        capability: str | None = None,
        protocol: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> tuple[list[tuple[ServiceRecord, list[Entrypoint]]], str | None]:
        """Entrypoints of active services (optionally by capability and protocol), one page of services at a time."""
        page = await self.find(
            ServiceQuery(statuses=frozenset({S.ACTIVE}), capability=capability, after=after, limit=limit)
        )
        found = []
        for record in page.items:
            endpoints = [e for e in record.endpoints if protocol is None or e.protocol == protocol]
            if endpoints or protocol is None:
                found.append((record, endpoints))
        return found, page.next_after

    async def dependents(self, slug: str) -> list[str]:
        """Everything that currently depends on ``slug``, as reported by the configured checks."""
        found: list[str] = []
        for check in self.dependents_checks:
            found.extend(await check(slug))
        return found

    # --- internals --------------------------------------------------------------------------------------------

    async def _write(
        self, registration: Registration, principal: Principal, *, allow_update: bool
    ) -> tuple[ServiceRecord, bool]:
        self._validate(registration)
        # An upsert that changes no data (a service registering again as it restarts) only restarts the clock: the
        # store tries that first, in one round trip, and answers the stored record for the general path otherwise.
        resolved = self._resolved(registration) if allow_update else None
        account = None if principal.is_admin else principal.account
        for attempt in range(_WRITE_ATTEMPTS):
            now = self.clock.now()
            if resolved is None:
                current = await self.store.get(registration.slug)
            else:
                refreshed, current = await self.store.refresh(
                    resolved, at=now, from_statuses=_REFRESHABLE, account=account
                )
                if refreshed is not None:
                    return refreshed, False
            if current is not None:
                self._check_owner(current, principal)
            try:
                if current is None:
                    status = states.transition(None, self._register_event(registration, principal))
                    record = self._apply(None, registration, principal, now, status)
                    first = VersionEntry(
                        slug=record.slug, version=record.version, previous_version=None, recorded_at=now
                    )
                    events = [service_draft(Topic.SERVICE_REGISTERED, record, now)]
                    stored = await self.store.create(record, first, events=events)
                    await self._announce()
                    return stored, True
                if not _holds_slug(current, now):
                    # Its earlier life ended (expired, perhaps not yet swept, or deregistered): register afresh. The
                    # owning account stays, so another account cannot take over a name while its service is down.
                    origin = current.status if current.status in (S.EXPIRED, S.DEREGISTERED) else S.EXPIRED
                    status = states.transition(origin, self._register_event(registration, principal))
                    record = self._apply(current, registration, principal, now, status)
                    record = msgspec.structs.replace(record, registered_at=now, health=None)
                    rewrite = Rewrite(status=status, restart_at=now, clear_health=True)
                    # A new life, whatever version it runs: one ``registered``, no ``version_changed``.
                    after = msgspec.structs.replace(record, status=status, revision=current.revision + 1)
                    events = [service_draft(Topic.SERVICE_REGISTERED, after, now)]
                    return await self._replace(current, record, now, rewrite, events), True
                if not allow_update:
                    raise ServiceExists(
                        f"service '{registration.slug}' is already registered; use PUT to update it",
                        service_status=current.status.value,
                    )
                states.transition(current.status, Event.UPDATE)
                record = self._apply(current, registration, principal, now)
                # Latest wins, and registering again counts as contact: the clock restarts, the status stays.
                rewrite = Rewrite(from_statuses=states.sources(Event.UPDATE), restart_at=now)
                return await self._replace(current, record, now, rewrite, _change_events(current, record, now)), False
            except (StaleWrite, ServiceNotFound):
                await _backoff(attempt)
                continue
            except ServiceExists:
                if current is None and allow_update:
                    continue  # lost a create race to another registration: replace it on the next attempt
                raise
        raise ServiceConflict(f"service '{registration.slug}' is changing too fast to register; retry")

    async def _contact(
        self, slug: str, principal: Principal | None, now: datetime, event: Event, health: HealthReport | None
    ) -> ServiceRecord:
        account = principal.account if principal is not None and not principal.is_admin else None
        contact = Contact(
            at=now,
            status=states.TRANSITIONS[S.ACTIVE, event],
            from_statuses=states.sources(event),
            health=health,
            account=account,
        )
        touched, topic = await self.store.touch_logged(slug, contact)
        if topic is not None:
            await self._announce()
        if touched is not None:
            return touched
        # Cold path: say why nothing matched.
        current = await self.store.get(slug)
        if current is None or not (states.is_live(current, now) or current.status is S.PENDING):
            raise ServiceNotFound(f"service '{slug}' is not registered", slug=slug)
        self._check_owner(current, principal)
        raise ServiceConflict(f"service '{slug}' is {current.status.value} and takes no heartbeat until approved")

    async def _decide(self, slug: str, principal: Principal, event: Event) -> ServiceRecord:
        if not principal.is_admin:
            raise AccessDenied("only an admin may approve or reject services")
        for attempt in range(_WRITE_ATTEMPTS):
            now = self.clock.now()
            current = await self.store.get(slug)
            if current is None:
                raise ServiceNotFound(f"service '{slug}' is not registered")
            status = states.transition(current.status, event)
            rewrite = Rewrite(from_statuses=states.sources(event), status=status, restart_at=now)
            topic = Topic.SERVICE_APPROVED if event is Event.APPROVE else Topic.SERVICE_REJECTED
            after = msgspec.structs.replace(current, status=status, revision=current.revision + 1)
            events = [service_draft(topic, after, now, by=principal.account)]
            try:
                decided = await self.store.replace(
                    current, expected_revision=current.revision, rewrite=rewrite, events=events
                )
            except StaleWrite:
                await _backoff(attempt)
                continue
            await self._announce()
            return decided
        raise ServiceConflict(f"service '{slug}' is changing too fast; retry")

    async def _get_live_or_pending(self, slug: str, now: datetime) -> ServiceRecord:
        current = await self.store.get(slug)
        if current is None or not _holds_slug(current, now) or current.status is S.REJECTED:
            raise ServiceNotFound(f"service '{slug}' is not registered; register it with POST first", slug=slug)
        return current

    def _register_event(self, registration: Registration, principal: Principal) -> Event:
        policy = self.policy
        approved = (
            principal.is_admin
            or policy.auto_approve_all
            or principal.account in policy.auto_approve_accounts
            or registration.slug in policy.auto_approve_slugs
        )
        return Event.REGISTER_APPROVED if approved else Event.REGISTER_PENDING

    def _apply(
        self,
        current: ServiceRecord | None,
        registration: Registration,
        principal: Principal,
        now: datetime,
        status: ServiceStatus | None = None,
    ) -> ServiceRecord:
        """The record that ``registration`` makes of ``current`` (``None`` for a new slug) at ``now``.

        Data is replaced whole (latest wins); ``registered_at`` and the owning account stay, and ``updated_at`` moves
        only when data changed. A new record gets ``status`` and a clock starting ``now``; for an existing one the
        status and the contact state are the store's to decide (see :class:`~litestar_registry.core.models.Rewrite`).
        """
        data = msgspec.structs.asdict(self._resolved(registration))
        data["updated_at"] = now
        ttl, windows = data["ttl_seconds"], data["expiry_windows"]
        if current is None:
            assert status is not None
            return ServiceRecord(
                registered_at=now, account=principal.account, status=status, **data, **_clock(now, ttl, windows, status)
            )
        record = msgspec.structs.replace(current, **data)
        if _same_data(current, record):
            record = msgspec.structs.replace(record, updated_at=current.updated_at)
        return record

    def _resolved(self, registration: Registration) -> Registration:
        """``registration`` with the policy's TTL and expiry windows where it names none: the data a write stores."""
        return msgspec.structs.replace(
            registration,
            ttl_seconds=float(registration.ttl_seconds or self.policy.default_ttl_seconds),
            expiry_windows=registration.expiry_windows or self.policy.expiry_windows,
        )

    async def _replace(
        self,
        current: ServiceRecord,
        updated: ServiceRecord,
        now: datetime,
        rewrite: Rewrite,
        events: Sequence[EventDraft],
    ) -> ServiceRecord:
        """Write ``updated`` over ``current`` (read at ``now``) with ``events``, and announce them once written.

        The history entry is appended when the version changed.
        """
        stored = await self.store.replace(
            updated,
            expected_revision=current.revision,
            history=self._history(current, updated, now),
            rewrite=rewrite,
            history_limit=self.policy.history_limit,
            events=events,
        )
        if events:
            await self._announce()
        return stored

    async def _announce(self) -> None:
        """Tell ``on_events`` that the log grew; a failing hook is logged, never the write's failure."""
        if self.on_events is None:
            return
        try:
            await self.on_events()
        except Exception:
            logger.exception("the registry's on_events hook failed; the events are in the log all the same")

    @staticmethod
    def _history(current: ServiceRecord, updated: ServiceRecord, now: datetime) -> VersionEntry | None:
        """The history entry that going from ``current`` to ``updated`` appends, if the version changed."""
        if current.version == updated.version:
            return None
        return VersionEntry(
            slug=updated.slug, version=updated.version, previous_version=current.version, recorded_at=now
        )

    def _validate(self, registration: Registration) -> None:
        check_slug(registration.slug)
        # A dialect's own data (the TTL dialect's info, kept as sent) first: its paths are relative to its own body.
        for data in registration.extensions.values():
            check_storable(data, "")
        for name in Registration.__struct_fields__:
            if name != "extensions":
                check_storable(getattr(registration, name), name)
        ttl = registration.ttl_seconds
        policy = self.policy
        if ttl is not None and not policy.min_ttl_seconds <= ttl <= policy.max_ttl_seconds:
            raise InvalidInput(
                f"ttl_seconds must be between {policy.min_ttl_seconds:g} and {policy.max_ttl_seconds:g}",
                field="ttl_seconds",
            )

    @staticmethod
    def _check_owner(record: ServiceRecord, principal: Principal | None) -> None:
        if principal is None or principal.is_admin or record.account in (None, principal.account):
            return
        raise AccessDenied(f"service '{record.slug}' belongs to another account")


def _holds_slug(record: ServiceRecord, now: datetime) -> bool:
    """Whether the record still holds its slug: pending and rejected do; live ones until they expire."""
    if record.status in (S.PENDING, S.REJECTED):
        return True
    return states.is_live(record, now)


def _clock(now: datetime, ttl: float, windows: int, status: ServiceStatus) -> dict[str, Any]:
    """Contact-clock fields for a service last seen ``now``; only live services are due for sweeping."""
    deadline = now + timedelta(seconds=ttl)
    return {
        "last_seen_at": now,
        "deadline_at": deadline,
        "expires_at": now + timedelta(seconds=ttl * windows),
        "next_check_at": deadline if status in states.LIVE else None,
    }


_REFRESHABLE = states.sources(Event.UPDATE)
"""Statuses whose service an unchanged upsert refreshes (a live one only before its expiry: see ``_holds_slug``)."""
_CONTACT_FIELDS = frozenset(
    {"status", "last_seen_at", "deadline_at", "expires_at", "next_check_at", "failure_count", "health"}
)
"""What contact and sweeps move: a data write leaves these to the store (see ``Rewrite``)."""
_DATA_FIELDS = tuple(
    name
    for name in ServiceRecord.__struct_fields__
    if name not in _CONTACT_FIELDS | {"revision", "contact_revision", "updated_at"}
)


def _same_data(a: ServiceRecord, b: ServiceRecord) -> bool:
    """Whether two records differ in nothing a registration sets (contact and bookkeeping fields aside)."""
    return all(getattr(a, name) == getattr(b, name) for name in _DATA_FIELDS)


def _change_events(
    current: ServiceRecord, updated: ServiceRecord, now: datetime, *, as_update: bool = True
) -> list[EventDraft]:
    """The events of a data write from ``current`` to ``updated``; none for an identical write.

    ``service.updated`` when the data differs (unless not ``as_update``: a heartbeat naming another version is not a
    re-registration), then ``service.version_changed`` when the version does.
    """
    after = msgspec.structs.replace(updated, revision=current.revision + 1)
    events = []
    if as_update and not _same_data(current, after):
        events.append(service_draft(Topic.SERVICE_UPDATED, after, now))
    if current.version != after.version:
        events.append(service_draft(Topic.SERVICE_VERSION_CHANGED, after, now, previous_version=current.version))
    return events


def _clock_changed(a: ServiceRecord, b: ServiceRecord) -> bool:
    """Whether going from ``a`` to ``b`` changes the contact window, so that the clock must restart."""
    return (a.ttl_seconds, a.expiry_windows) != (b.ttl_seconds, b.expiry_windows)
