"""The registry's domain records: plain msgspec Structs that every store persists and every dialect renders."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any

import msgspec

__all__ = (
    "Contact",
    "Entrypoint",
    "HealthReport",
    "Heartbeat",
    "Owner",
    "Page",
    "Registration",
    "Rewrite",
    "ServiceQuery",
    "ServiceRecord",
    "ServiceStatus",
    "VersionEntry",
    "VersionPage",
)


class ServiceStatus(enum.StrEnum):
    """Where a service stands in the registry's state table (see :mod:`litestar_registry.core.states`)."""

    PENDING = "pending"
    ACTIVE = "active"
    DEGRADED = "degraded"
    REJECTED = "rejected"
    EXPIRED = "expired"
    DEREGISTERED = "deregistered"


class Entrypoint(msgspec.Struct, kw_only=True, frozen=True):
    """One way to reach a service: what discovery hands out."""

    name: str
    url: str
    protocol: str = "http"
    method: str | None = None
    description: str | None = None


class Owner(msgspec.Struct, kw_only=True, frozen=True):
    """Who to contact about a service."""

    name: str | None = None
    email: str | None = None
    url: str | None = None


class HealthReport(msgspec.Struct, kw_only=True, frozen=True):
    """What the last heartbeat said about the service (kept as sent, for operators)."""

    status: str
    uptime_seconds: float | None = None
    instance_id: str | None = None
    message: str | None = None
    checks: dict[str, str] = msgspec.field(default_factory=dict)
    metrics: dict[str, float] = msgspec.field(default_factory=dict)
    reported_at: datetime | None = None
    """When the service says it sent the report, in UTC (a timestamp sent with another offset is converted)."""


class ServiceRecord(msgspec.Struct, kw_only=True, frozen=True):
    """A service as the store keeps it.

    Time fields are aware UTC datetimes. ``deadline_at`` is when the next contact is due (missing it degrades the
    service), ``expires_at`` when silence expires it, ``next_check_at`` when the sweeper must next look at it (``None``
    for services the sweeper leaves alone).

    Contact state is kept apart from data, as Consul keeps a check's state apart from the service definition:
    ``last_seen_at``, ``deadline_at``, ``expires_at``, ``next_check_at``, ``failure_count`` and ``health`` are moved by
    contact (heartbeat, ping) and by sweeps; ``status`` by both contact and sweeps (live and expired) and data writes
    (approve, reject, deregister, a new registration). Two counters follow them: ``revision`` grows on every data
    write and is what data writes compare-and-set on, so contact never makes one fail; ``contact_revision`` grows on
    every write that moves the status or the contact state, and is what a sweep claims a record on.
    """

    slug: str
    name: str
    version: str
    status: ServiceStatus
    registered_at: datetime
    updated_at: datetime
    last_seen_at: datetime
    ttl_seconds: float
    expiry_windows: int
    deadline_at: datetime
    expires_at: datetime
    next_check_at: datetime | None
    description: str | None = None
    base_url: str | None = None
    health_url: str | None = None
    documentation_url: str | None = None
    endpoints: tuple[Entrypoint, ...] = ()
    capabilities: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    owner: Owner | None = None
    account: str | None = None
    """The account that first registered the slug: the only service account allowed to change it."""
    failure_count: int = 0
    health: HealthReport | None = None
    extensions: dict[str, Any] = msgspec.field(default_factory=dict)
    """Dialect-specific data kept verbatim (the TTL dialect's ``info``), keyed by dialect."""
    revision: int = 1
    """The data revision: grows by one on every data write (never on contact or a sweep)."""
    contact_revision: int = 1
    """Grows by one on every write that moves the status or the contact state (contact, sweeps, some data writes)."""

    @property
    def ttl(self) -> timedelta:
        """The contact window as a timedelta."""
        return timedelta(seconds=self.ttl_seconds)


class VersionEntry(msgspec.Struct, kw_only=True, frozen=True):
    """One line of a service's version history."""

    slug: str
    version: str
    previous_version: str | None
    recorded_at: datetime


class Registration(msgspec.Struct, kw_only=True, frozen=True):
    """What a service says about itself when it registers; every dialect translates its body into this."""

    slug: str
    name: str
    version: str
    description: str | None = None
    base_url: str | None = None
    health_url: str | None = None
    documentation_url: str | None = None
    endpoints: tuple[Entrypoint, ...] = ()
    capabilities: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    owner: Owner | None = None
    ttl_seconds: float | None = None
    """The contact window; ``None`` takes the registry's default."""
    expiry_windows: int | None = None
    """Windows the service may miss before it expires; ``None`` takes the registry's default."""
    extensions: dict[str, Any] = msgspec.field(default_factory=dict)


class Heartbeat(msgspec.Struct, kw_only=True, frozen=True):
    """A heartbeat as the core takes it (seed 000): contact, what the service reports about itself, and its version."""

    slug: str
    health: HealthReport
    """The report, kept as sent; a ``health.status`` other than ``healthy`` leaves the service degraded."""
    version: str | None = None
    """The version the service runs; a different one is recorded as a version change."""


class Contact(msgspec.Struct, kw_only=True, frozen=True):
    """A heartbeat or ping, as the store applies it in one round trip.

    The store applies it only to a record whose status is in ``from_statuses``, whose ``expires_at`` is after ``at``
    and, when ``account`` is set, whose ``account`` equals it; the new deadlines are ``at`` plus the record's own
    TTL (times its expiry windows for ``expires_at``). A contact older than the stored ``last_seen_at`` changes nothing:
    contact never goes backwards.
    """

    at: datetime
    status: ServiceStatus
    from_statuses: frozenset[ServiceStatus]
    health: HealthReport | None = None
    account: str | None = None
    """When set, only a record owned by this account matches (a service may touch only its own slugs)."""


class Rewrite(msgspec.Struct, kw_only=True, frozen=True):
    """What a data write (``ServiceStore.replace``) does with the status and the contact state.

    Contact and sweeps move those concurrently with data writes, so by default a data write leaves them as stored.
    Writing a status, or restarting the contact clock, is decided by the store in the same atomic write.
    """

    from_statuses: frozenset[ServiceStatus] | None = None
    """The stored status must be one of these, or nothing is written (``StaleWrite``); ``None`` accepts any.
    A write that keeps the status names the statuses it read it in, so that an expiry persisted since fails it."""
    status: ServiceStatus | None = None
    """The status to write; ``None`` keeps the stored one, whatever contact or a sweep made it."""
    restart_at: datetime | None = None
    """Restart the contact clock, as a contact at this instant would with the record's (new) TTL: ``last_seen_at``
    becomes the later of the stored one and this instant (contact never goes backwards), the deadlines follow from it,
    ``failure_count`` becomes 0. ``None`` keeps every contact field as stored."""
    clear_health: bool = False
    """With ``restart_at``: forget the last health report (a new registration starts a new life)."""


class ServiceQuery(msgspec.Struct, kw_only=True, frozen=True):
    """Filters and a page window for listing services; every filter given must match."""

    statuses: frozenset[ServiceStatus] | None = None
    tag: str | None = None
    capability: str | None = None
    text: str | None = None
    """Case-insensitive substring of slug, name or description."""
    after: str | None = None
    """Return slugs strictly after this one (the cursor)."""
    limit: int = 50


class Page(msgspec.Struct, kw_only=True, frozen=True):
    """A page of services in slug order; ``next_after`` is the cursor for the next page, ``None`` at the end."""

    items: list[ServiceRecord]
    next_after: str | None = None


class VersionPage(msgspec.Struct, kw_only=True, frozen=True):
    """A page of a service's version history, oldest first.

    ``next_after`` is the position to pass as ``after`` for the next page, ``None`` at the end. Positions are opaque
    integers of the store, stable while older entries are dropped beyond the history limit.
    """

    items: list[VersionEntry]
    next_after: int | None = None
