"""The webhook read model's tables, on the registry's own metadata (bind key ``registry``, ``registry_`` names).

Indexes serve the reads each caller makes, each a range scan: the enabled subscriptions (the relay, every poll), a
page of subscriptions by id, a subscription's deliveries newest first (all, or in some states), the deliveries in
flight (at startup), a delivery's attempts. Secrets are stored sealed (Fernet), never in plain text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from litestar_registry.store.sqlalchemy.models import TABLE_PREFIX, Json, RegistryBase

__all__ = (
    "WebhookAttemptModel",
    "WebhookCursorModel",
    "WebhookDeliveryModel",
    "WebhookSubscriptionModel",
)

SUBSCRIPTIONS = f"{TABLE_PREFIX}webhook_subscriptions"
DELIVERIES = f"{TABLE_PREFIX}webhook_deliveries"
ATTEMPTS = f"{TABLE_PREFIX}webhook_attempts"
CURSORS = f"{TABLE_PREFIX}webhook_cursors"


class WebhookSubscriptionModel(RegistryBase):
    """One subscription: where to send which topics, and its sealed secrets."""

    __tablename__ = SUBSCRIPTIONS
    __table_args__ = (Index(f"ix_{SUBSCRIPTIONS}_enabled", "enabled", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    url: Mapped[str] = mapped_column(Text())
    topics: Mapped[list[str]] = mapped_column(Json)
    description: Mapped[str | None] = mapped_column(Text())
    enabled: Mapped[bool] = mapped_column(Boolean())
    secret: Mapped[dict[str, Any]] = mapped_column(Json)
    previous_secrets: Mapped[list[Any]] = mapped_column(Json)
    start_after: Mapped[int] = mapped_column(BigInteger())
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC())
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC())
    disabled_reason: Mapped[str | None] = mapped_column(Text())
    revision: Mapped[int] = mapped_column(Integer())


class WebhookDeliveryModel(RegistryBase):
    """The delivery of one event to one subscription, by its ``webhook-id``."""

    __tablename__ = DELIVERIES
    __table_args__ = (
        Index(f"ix_{DELIVERIES}_subscription", "subscription_id", "event_id"),
        Index(f"ix_{DELIVERIES}_subscription_state", "subscription_id", "state", "event_id"),
        Index(f"ix_{DELIVERIES}_state", "state", "event_id"),
    )

    webhook_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(
        String(36),
        ForeignKey(f"{SUBSCRIPTIONS}.id", ondelete="CASCADE", name=f"fk_{DELIVERIES}_subscription"),
    )
    event_id: Mapped[int] = mapped_column(BigInteger())
    topic: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text())
    run: Mapped[int] = mapped_column(Integer())
    attempts: Mapped[int] = mapped_column(Integer())
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC())
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC())
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTimeUTC())
    last_status_code: Mapped[int | None] = mapped_column(Integer())
    last_error: Mapped[str | None] = mapped_column(Text())
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC())


class WebhookAttemptModel(RegistryBase):
    """One attempt of one run of a delivery."""

    __tablename__ = ATTEMPTS

    webhook_id: Mapped[str] = mapped_column(
        String(64),
        ForeignKey(f"{DELIVERIES}.webhook_id", ondelete="CASCADE", name=f"fk_{ATTEMPTS}_delivery"),
        primary_key=True,
    )
    run: Mapped[int] = mapped_column(Integer(), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer(), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTimeUTC())
    executor_id: Mapped[str] = mapped_column(String())
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC())
    outcome: Mapped[str | None] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer())
    latency_ms: Mapped[int | None] = mapped_column(Integer())
    error: Mapped[str | None] = mapped_column(Text())
    response_excerpt: Mapped[str | None] = mapped_column(Text())


class WebhookCursorModel(RegistryBase):
    """A named position in the change log: the relay's, up to which every delivery was started."""

    __tablename__ = CURSORS

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger())
