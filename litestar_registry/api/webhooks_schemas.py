"""Wire shapes of the webhook admin routes: subscriptions, deliveries and attempts.

A subscription's secret appears in two answers only, the creation's and the rotation's, and never in a list or a
read: it is kept sealed and used only to sign deliveries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from litestar_registry.api.schemas import Text, Url
from litestar_registry.core.events import Topic
from litestar_registry.webhooks.models import AttemptRecord, DeliveryRecord, SubscriptionRecord
from litestar_registry.webhooks.signing import MAX_SECRET_BYTES, MIN_SECRET_BYTES
from litestar_registry.webhooks.states import DeliveryState

__all__ = (
    "AttemptView",
    "DeliveryDetailView",
    "DeliveryView",
    "RotateSecretRequest",
    "SecretShown",
    "SubscriptionCreate",
    "SubscriptionUpdate",
    "SubscriptionView",
)

Topics = Annotated[
    list[Topic],
    msgspec.Meta(
        min_length=1,
        max_length=len(Topic),
        description="Topics of the event catalog; at least one.",
        examples=[["service.registered", "service.deregistered"]],
    ),
]
Secret = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^whsec_[A-Za-z0-9+/]+={0,2}$",
        min_length=len("whsec_") + 4 * MIN_SECRET_BYTES // 3,
        max_length=len("whsec_") + 4 * ((MAX_SECRET_BYTES + 2) // 3),
        description=f"'whsec_' and the standard base64 of {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random bytes.",
    ),
]
GraceSeconds = Annotated[
    float,
    msgspec.Meta(ge=0, le=30 * 86_400, description="How long the old secret keeps signing beside the new one."),
]


class SubscriptionCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new subscription. Without a ``secret``, the registry makes one; either way it is shown once, in the answer."""

    url: Url
    """Where deliveries are POSTed; the outbound policy refuses loopback and private addresses unless allowed."""
    topics: Topics
    description: Text | None = None
    enabled: bool = True
    secret: Secret | None = None


class SubscriptionUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What to change; fields left out stay as they are (``description: null`` clears it)."""

    url: Url | msgspec.UnsetType = msgspec.UNSET
    topics: Topics | msgspec.UnsetType = msgspec.UNSET
    description: Text | msgspec.UnsetType | None = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET


class RotateSecretRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A rotation: a new secret (made by the registry unless given) and the old one's grace period."""

    secret: Secret | None = None
    grace_seconds: GraceSeconds | None = None
    """Unset: the configured grace (``REGISTRY_WEBHOOKS_ROTATION_GRACE_SECONDS``); 0 drops the old secret at once."""


class SubscriptionView(msgspec.Struct, kw_only=True):
    """A subscription, without its secret."""

    id: str
    url: str
    topics: list[Topic]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    """Why it is disabled: an admin, or the subscriber's 410 Gone."""
    start_after: int
    """The change log's last id when it was created: it receives later events only."""
    previous_secrets_valid_until: datetime | None
    """Until when a rotated secret still signs deliveries beside the current one."""
    created_at: datetime
    updated_at: datetime

    @classmethod
    def fields_of(cls, record: SubscriptionRecord, now: datetime) -> dict[str, Any]:
        """The view's fields for ``record`` at ``now``."""
        valid = [previous.expires_at for previous in record.previous_secrets if previous.expires_at > now]
        return {
            "id": record.id,
            "url": record.url,
            "topics": list(record.topics),
            "description": record.description,
            "enabled": record.enabled,
            "disabled_reason": record.disabled_reason,
            "start_after": record.start_after,
            "previous_secrets_valid_until": max(valid) if valid else None,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }

    @classmethod
    def of(cls, record: SubscriptionRecord, now: datetime) -> SubscriptionView:
        """Render a subscription."""
        return cls(**cls.fields_of(record, now))


class SecretShown(SubscriptionView, kw_only=True):
    """A subscription with its new secret: the answer of a creation or a rotation, the only ones that show it."""

    secret: str


class DeliveryView(msgspec.Struct, kw_only=True):
    """The delivery of one event to one subscription."""

    webhook_id: str
    """The ``webhook-id`` header: the same on every attempt and every replay."""
    subscription_id: str
    event_id: int
    topic: Topic
    state: DeliveryState
    run: int
    """0 for the first run, one more for each replay."""
    attempts: int
    """Attempts of the current run so far."""
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    finished_at: datetime | None

    @classmethod
    def fields_of(cls, record: DeliveryRecord) -> dict[str, Any]:
        """The view's fields for ``record``."""
        return {name: getattr(record, name) for name in DeliveryView.__struct_fields__}

    @classmethod
    def of(cls, record: DeliveryRecord) -> DeliveryView:
        """Render a delivery."""
        return cls(**cls.fields_of(record))


class DeliveryDetailView(DeliveryView, kw_only=True):
    """A delivery with the envelope it sends."""

    envelope: dict[str, Any]
    """The body, exactly as signed and sent: ``type``, ``timestamp``, ``data``, ``event_id``, ``catalog_version``,
    ``subject``, ``tenant``."""


class AttemptView(msgspec.Struct, kw_only=True):
    """One attempt: what the subscriber answered, how fast, or what went wrong."""

    run: int
    attempt: int
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    """``delivered``, ``failed``, ``gone`` (410), or null while it runs (or when its process died)."""
    status_code: int | None
    latency_ms: int | None
    error: str | None
    response_excerpt: str | None
    """The start of the answer's body, as text."""
    executor_id: str

    @classmethod
    def of(cls, record: AttemptRecord) -> AttemptView:
        """Render an attempt."""
        return cls(**{name: getattr(record, name) for name in AttemptView.__struct_fields__})
