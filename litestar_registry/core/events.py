"""The change log: the versioned topic catalog, one payload schema per topic, and the log's port.

Every change in the registry and in provisioning becomes a :class:`ChangeEvent`. The store that makes the change
appends the event in the same atomic write (one SQL transaction, one Redis script, one step of the event loop), so the
log is the outbox: a process that dies between a change and its delivery loses nothing, and webhook deliveries, the
SSE feed and the long poll all read the log by id. Ids grow monotonically per store; they are the feed's cursor and
the long poll's index.

This module is framework-free like the rest of the core: the stores implement :class:`EventLog`, the HTTP layer and
the webhook relay read it.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

import msgspec

from litestar_registry.core.models import ServiceRecord, ServiceStatus

__all__ = (
    "CATALOG",
    "CATALOG_VERSION",
    "ChangeEvent",
    "EventDraft",
    "EventLog",
    "EventPage",
    "ServiceApproved",
    "ServiceDegraded",
    "ServiceDeregistered",
    "ServiceExpired",
    "ServiceRecovered",
    "ServiceRef",
    "ServiceRegistered",
    "ServiceRejected",
    "ServiceUpdated",
    "ServiceVersionChanged",
    "Topic",
    "WorkflowFailed",
    "WorkflowRef",
    "WorkflowStarted",
    "WorkflowStepFailed",
    "WorkflowStepWaiting",
    "WorkflowSucceeded",
    "contact_topic",
    "payload_of",
    "service_draft",
    "sweep_topic",
    "with_status",
)

CATALOG_VERSION = "1.0"
"""The version of the topic catalog. Adding a topic or an optional field is a minor change; anything else is major."""


class Topic(enum.StrEnum):
    """Every topic of catalog v1.0: nine about services, five about provisioning workflows."""

    SERVICE_REGISTERED = "service.registered"
    SERVICE_UPDATED = "service.updated"
    SERVICE_VERSION_CHANGED = "service.version_changed"
    SERVICE_APPROVED = "service.approved"
    SERVICE_REJECTED = "service.rejected"
    SERVICE_DEGRADED = "service.degraded"
    SERVICE_RECOVERED = "service.recovered"
    SERVICE_EXPIRED = "service.expired"
    SERVICE_DEREGISTERED = "service.deregistered"
    WORKFLOW_STARTED = "workflow.started"
    WORKFLOW_STEP_WAITING = "workflow.step_waiting"
    WORKFLOW_STEP_FAILED = "workflow.step_failed"
    WORKFLOW_SUCCEEDED = "workflow.succeeded"
    WORKFLOW_FAILED = "workflow.failed"


# --- payloads ---------------------------------------------------------------------------------------------------


class ServiceRef(msgspec.Struct, kw_only=True, frozen=True):
    """What every service topic says: which service, and its status after the change."""

    slug: str
    name: str
    version: str
    status: ServiceStatus
    account: str | None = None
    """The account that owns the slug."""


class ServiceRegistered(ServiceRef, kw_only=True, frozen=True):
    """A slug registered afresh (new, or after it expired or was deregistered)."""

    base_url: str | None = None
    tags: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    revision: int


class ServiceUpdated(ServiceRegistered, kw_only=True, frozen=True):
    """A live or pending service re-registered with different data."""


class ServiceVersionChanged(ServiceRef, kw_only=True, frozen=True):
    """The version a service runs changed (re-registration or a heartbeat that names another version)."""

    previous_version: str | None


class ServiceApproved(ServiceRef, kw_only=True, frozen=True):
    """An admin approved a pending service."""

    by: str | None = None
    """The admin account that decided."""


class ServiceRejected(ServiceRef, kw_only=True, frozen=True):
    """An admin rejected a pending service."""

    by: str | None = None
    """The admin account that decided."""


class ServiceDegraded(ServiceRef, kw_only=True, frozen=True):
    """A live service became degraded: a contact window missed, or a heartbeat reporting it unhealthy."""

    previous_status: ServiceStatus
    last_seen_at: datetime
    failure_count: int = 0


class ServiceRecovered(ServiceRef, kw_only=True, frozen=True):
    """A degraded service is active again: contact in time, reporting healthy."""

    previous_status: ServiceStatus
    last_seen_at: datetime


class ServiceExpired(ServiceRef, kw_only=True, frozen=True):
    """A live service stayed silent past its expiry window."""

    previous_status: ServiceStatus
    last_seen_at: datetime


class ServiceDeregistered(ServiceRef, kw_only=True, frozen=True):
    """A service was deregistered (its record kept or removed, per configuration)."""

    previous_status: ServiceStatus
    by: str | None = None
    """The account that deregistered it: the service's own, or an admin's."""
    reason: str | None = None
    """Why, as the caller said it (a deregistration's ``reason``), when it said."""


class WorkflowRef(msgspec.Struct, kw_only=True, frozen=True):
    """What every workflow topic says: which workflow, of which tenant, for which service."""

    workflow_id: str
    tenant: str
    service_slug: str
    definition: str


class WorkflowStarted(WorkflowRef, kw_only=True, frozen=True):
    """A provisioning workflow was accepted and its first steps are about to run."""

    steps: tuple[str, ...] = ()


class WorkflowStepWaiting(WorkflowRef, kw_only=True, frozen=True):
    """A step handed out its callback token and waits for ``POST .../callback``; the token itself is never sent."""

    step: str
    expires_at: datetime | None = None


class WorkflowStepFailed(WorkflowRef, kw_only=True, frozen=True):
    """A step failed for good (retries exhausted, timed out, or the callback reported failure)."""

    step: str
    error: str | None = None


class WorkflowSucceeded(WorkflowRef, kw_only=True, frozen=True):
    """Every step of the workflow succeeded."""


class WorkflowFailed(WorkflowRef, kw_only=True, frozen=True):
    """The workflow failed (after compensating its completed steps) or was cancelled."""

    error: str | None = None
    cancelled: bool = False


CATALOG: Mapping[Topic, type[msgspec.Struct]] = {
    Topic.SERVICE_REGISTERED: ServiceRegistered,
    Topic.SERVICE_UPDATED: ServiceUpdated,
    Topic.SERVICE_VERSION_CHANGED: ServiceVersionChanged,
    Topic.SERVICE_APPROVED: ServiceApproved,
    Topic.SERVICE_REJECTED: ServiceRejected,
    Topic.SERVICE_DEGRADED: ServiceDegraded,
    Topic.SERVICE_RECOVERED: ServiceRecovered,
    Topic.SERVICE_EXPIRED: ServiceExpired,
    Topic.SERVICE_DEREGISTERED: ServiceDeregistered,
    Topic.WORKFLOW_STARTED: WorkflowStarted,
    Topic.WORKFLOW_STEP_WAITING: WorkflowStepWaiting,
    Topic.WORKFLOW_STEP_FAILED: WorkflowStepFailed,
    Topic.WORKFLOW_SUCCEEDED: WorkflowSucceeded,
    Topic.WORKFLOW_FAILED: WorkflowFailed,
}
"""Catalog v1.0: the payload schema of every topic. The docs generate the catalog page from this mapping."""


# --- the log ----------------------------------------------------------------------------------------------------


class EventDraft(msgspec.Struct, kw_only=True, frozen=True):
    """An event as a write hands it to the store, which gives it its id in the same atomic write."""

    topic: Topic
    occurred_at: datetime
    subject: str
    """The service slug, or the workflow id."""
    data: dict[str, Any]
    """The topic's payload (``CATALOG[topic]``) as JSON-ready builtins."""
    tenant: str | None = None
    """The tenant of a workflow topic; ``None`` for service topics."""


class ChangeEvent(msgspec.Struct, kw_only=True, frozen=True):
    """One entry of the change log."""

    id: int
    """Grows monotonically per store: the feed's cursor and the long poll's index."""
    topic: Topic
    occurred_at: datetime
    subject: str
    data: dict[str, Any]
    tenant: str | None = None


class EventPage(msgspec.Struct, kw_only=True, frozen=True):
    """Events after a cursor, oldest first; ``last_id`` is the highest id the log holds (0 when it never held any)."""

    items: list[ChangeEvent]
    last_id: int


class EventLog(ABC):
    """The change log a store keeps beside its records. Appends happen inside the store's own writes."""

    @abstractmethod
    async def read_events(
        self,
        after: int = 0,
        *,
        limit: int = 100,
        topics: Collection[Topic] | None = None,
        subject: str | None = None,
    ) -> EventPage:
        """Return up to ``limit`` events with ``id > after``, oldest first, of the given topics and subject.

        ``topics`` (any of them) and ``subject`` filter; ``None`` takes all. Ids are given in commit order: once a
        reader has seen id ``n``, no event with an id at or below ``n`` appears later, so following the log with
        ``after=`` the last id seen misses nothing. ``limit=0`` reads only ``last_id``, the cheap check of a long poll.
        ``last_id`` is the highest id ever appended, whatever the filters and retention (0 before the first).

        Events dropped by retention are simply missing: a reader whose cursor is older than the oldest event kept
        sees a gap in ids, never an error.
        """

    @abstractmethod
    async def trim_events(self, *, keep_after: int | None = None, older_than: datetime | None = None) -> int:
        """Drop events with ``id <= keep_after`` or ``occurred_at < older_than``, by index; return how many.

        The id counter is kept: ids are never reused, and ``last_id`` stays what it was.
        """


# --- building events --------------------------------------------------------------------------------------------


def payload_of(event: ChangeEvent | EventDraft) -> msgspec.Struct:
    """Decode ``event.data`` into its topic's payload Struct (raises ``msgspec.ValidationError`` if it does not fit)."""
    return msgspec.convert(event.data, CATALOG[Topic(event.topic)], strict=False)


def _ref(record: ServiceRecord) -> dict[str, Any]:
    return {
        "slug": record.slug,
        "name": record.name,
        "version": record.version,
        "status": str(record.status),
        "account": record.account,
    }


def service_draft(
    topic: Topic,
    record: ServiceRecord,
    at: datetime,
    *,
    previous_status: ServiceStatus | None = None,
    previous_version: str | None = None,
    by: str | None = None,
    reason: str | None = None,
) -> EventDraft:
    """The event a change to ``record`` appends under ``topic``, built from the record as stored after the change.

    ``previous_status`` (default: the record's own) and ``previous_version`` describe the record before it; a store
    that decides a transition inside its atomic write (contact, sweeps) builds the event with this function too.
    """
    before = previous_status if previous_status is not None else record.status
    data = _ref(record)
    if topic in (Topic.SERVICE_REGISTERED, Topic.SERVICE_UPDATED):
        data |= {
            "base_url": record.base_url,
            "tags": list(record.tags),
            "capabilities": list(record.capabilities),
            "revision": record.revision,
        }
    elif topic is Topic.SERVICE_VERSION_CHANGED:
        data["previous_version"] = previous_version
    elif topic in (Topic.SERVICE_APPROVED, Topic.SERVICE_REJECTED):
        data["by"] = by
    elif topic is Topic.SERVICE_DEREGISTERED:
        data |= {"previous_status": str(before), "by": by, "reason": reason}
    else:  # degraded, recovered, expired
        data |= {
            "previous_status": str(before),
            "last_seen_at": msgspec.to_builtins(record.last_seen_at),
        }
        if topic is Topic.SERVICE_DEGRADED:
            data["failure_count"] = record.failure_count
    return EventDraft(topic=topic, occurred_at=at, subject=record.slug, data=data)


def with_status(draft: EventDraft, status: ServiceStatus) -> EventDraft:
    """``draft`` saying that the service's status after the change is ``status``.

    A data write that keeps the status (``ServiceStore.replace`` without ``Rewrite.status``) cannot know it when the
    core builds its events: contact or a sweep may move it between the read and the write. The store, which decides,
    sets it in the same atomic write, so every event tells the status as stored.
    """
    if draft.data.get("status") == status.value:
        return draft
    return msgspec.structs.replace(draft, data={**draft.data, "status": status.value})


_CONTACT_TOPICS: Mapping[tuple[ServiceStatus, ServiceStatus], Topic] = {
    (ServiceStatus.DEGRADED, ServiceStatus.ACTIVE): Topic.SERVICE_RECOVERED,
    (ServiceStatus.ACTIVE, ServiceStatus.DEGRADED): Topic.SERVICE_DEGRADED,
}


def contact_topic(before: ServiceStatus, after: ServiceStatus) -> Topic | None:
    """The topic a contact (ping, heartbeat) that moved the status from ``before`` to ``after`` emits, if any.

    Contact that keeps the status is not a change and emits nothing: a healthy ping is not an event.
    """
    return _CONTACT_TOPICS.get((before, after))


def sweep_topic(before: ServiceStatus, after: ServiceStatus) -> Topic | None:
    """The topic a sweep that moved the status from ``before`` to ``after`` emits, if any."""
    if after is ServiceStatus.EXPIRED and before is not ServiceStatus.EXPIRED:
        return Topic.SERVICE_EXPIRED
    if before is ServiceStatus.ACTIVE and after is ServiceStatus.DEGRADED:
        return Topic.SERVICE_DEGRADED
    return None
