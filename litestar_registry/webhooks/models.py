"""The webhook read model: subscriptions, the delivery of each event to each subscription, and every attempt.

DBOS keeps the durable execution state of deliveries; these records are what the admin routes read and what the
delivery workflow decides on. A subscription's secrets are kept sealed (Fernet, see
:mod:`litestar_registry.provisioning.crypto`) and never leave the store but to sign a delivery, in memory.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import msgspec

from litestar_registry.core.clock import utc
from litestar_registry.core.events import CATALOG_VERSION, ChangeEvent, Topic
from litestar_registry.webhooks.states import DeliveryState

__all__ = (
    "WEBHOOK_ID_PATTERN",
    "AttemptRecord",
    "DeliveryPage",
    "DeliveryQuery",
    "DeliveryRecord",
    "PreviousSecret",
    "SubscriptionPage",
    "SubscriptionRecord",
    "dbos_delivery_id",
    "envelope",
    "is_webhook_id",
    "webhook_id",
)

WEBHOOK_ID_PATTERN = r"^msg_[0-9a-f]{32}_[0-9]{1,19}$"
"""A ``webhook-id``: ``msg_``, the subscription's id (32 hex digits), ``_``, the event's id in the log."""
_WEBHOOK_ID = re.compile(WEBHOOK_ID_PATTERN)


class PreviousSecret(msgspec.Struct, kw_only=True, frozen=True):
    """A secret replaced by a rotation: deliveries are still signed with it too until ``expires_at``."""

    secret: dict[str, str]
    """Sealed (``{"$sealed": token}``)."""
    expires_at: datetime


class SubscriptionRecord(msgspec.Struct, kw_only=True, frozen=True):
    """Where to send which topics, and the secrets deliveries are signed with."""

    id: str
    """A UUIDv7: subscriptions sort by creation."""
    url: str
    topics: tuple[Topic, ...]
    """Sorted, without duplicates, never empty."""
    description: str | None
    enabled: bool
    secret: dict[str, str]
    """The current secret, sealed."""
    previous_secrets: tuple[PreviousSecret, ...] = ()
    """Secrets replaced by rotations whose grace period has not run out (newest first), sealed."""
    start_after: int
    """The change log's last id when the subscription was created: only later events are delivered."""
    created_at: datetime
    updated_at: datetime
    disabled_reason: str | None = None
    """Why it is disabled (an admin, or the subscriber's 410); ``None`` while enabled."""
    revision: int = 1


class SubscriptionPage(msgspec.Struct, kw_only=True, frozen=True):
    """Subscriptions, oldest first; ``next_after`` is the cursor for the next page."""

    items: list[SubscriptionRecord]
    next_after: str | None = None


class DeliveryRecord(msgspec.Struct, kw_only=True, frozen=True):
    """The delivery of one event to one subscription, across its attempts and replays."""

    webhook_id: str
    """What the ``webhook-id`` header carries: the same for every attempt and every replay."""
    subscription_id: str
    event_id: int
    topic: Topic
    state: DeliveryState
    body: str
    """The envelope exactly as sent (JSON): replays send these bytes again, whatever the log has dropped since."""
    run: int = 0
    """0 for the first run, one more for each replay; each run is its own DBOS workflow."""
    attempts: int = 0
    """Attempts of the current run that answered (or failed to)."""
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    finished_at: datetime | None = None


class DeliveryQuery(msgspec.Struct, kw_only=True, frozen=True):
    """One subscription's deliveries, newest event first; every filter given must match."""

    subscription_id: str
    states: frozenset[DeliveryState] | None = None
    after: int | None = None
    """Return deliveries of events strictly older than this event id (the cursor)."""
    limit: int = 50


class DeliveryPage(msgspec.Struct, kw_only=True, frozen=True):
    """Deliveries, newest event first; ``next_after`` is the cursor for the next page."""

    items: list[DeliveryRecord]
    next_after: int | None = None


class AttemptRecord(msgspec.Struct, kw_only=True, frozen=True):
    """One attempt to deliver: what the subscriber answered, how fast, or what went wrong."""

    webhook_id: str
    run: int
    attempt: int
    started_at: datetime
    executor_id: str
    finished_at: datetime | None = None
    outcome: str | None = None
    """``delivered``, ``failed``, ``gone`` (410), or ``None`` while it runs (or when its process died)."""
    status_code: int | None = None
    latency_ms: int | None = None
    error: str | None = None
    response_excerpt: str | None = None
    """The start of the answer's body, as text (at most 1,000 characters of what was read)."""


def webhook_id(subscription_id: str, event_id: int) -> str:
    """The ``webhook-id`` of an event's delivery to a subscription: derived from both, so every relay agrees on it."""
    return f"msg_{subscription_id.replace('-', '')}_{event_id}"


def is_webhook_id(value: str) -> bool:
    """Whether ``value`` has the form of a ``webhook-id`` this registry hands out."""
    return _WEBHOOK_ID.fullmatch(value) is not None


def dbos_delivery_id(webhook_id: str, run: int) -> str:
    """The DBOS workflow id of one run of a delivery.

    Deterministic, so a delivery is started once however often (and by however many app instances) it is asked for.
    """
    return f"litestar_registry.webhook:{webhook_id}:{run}"


def envelope(event: ChangeEvent) -> str:
    """The body every subscriber receives for ``event``: type, timestamp and payload, plus where it sits in the log.

    ``{"type", "timestamp", "data", "event_id", "catalog_version", "subject", "tenant"}``; ``timestamp`` is when the
    change happened, in UTC (ISO 8601, ``Z``).
    """
    body: dict[str, Any] = {
        "type": Topic(event.topic).value,
        "timestamp": utc(event.occurred_at),
        "data": event.data,
        "event_id": event.id,
        "catalog_version": CATALOG_VERSION,
        "subject": event.subject,
        "tenant": event.tenant,
    }
    return msgspec.json.encode(body).decode()
