"""Signed webhooks: subscriptions to topics of the change log, delivered per Standard Webhooks v1, durably on DBOS.

This package's top level needs none of the ``workflows`` extra: models, the delivery state table, the retry schedule,
secrets and the read-model stores import without it. The engine (:mod:`.engine`: DBOS workflows, signing with
``standardwebhooks``, outbound HTTP with httpx) and the relay (:mod:`.relay`) need the extra.
"""

from __future__ import annotations

from litestar_registry.webhooks.errors import DeliveryNotFound, SubscriptionNotFound, WebhooksUnavailable
from litestar_registry.webhooks.models import (
    AttemptRecord,
    DeliveryPage,
    DeliveryQuery,
    DeliveryRecord,
    SubscriptionPage,
    SubscriptionRecord,
    envelope,
    webhook_id,
)
from litestar_registry.webhooks.schedule import DEFAULT_SCHEDULE, RetrySchedule
from litestar_registry.webhooks.states import DELIVERY_TRANSITIONS, DeliveryEvent, DeliveryState

__all__ = (
    "DEFAULT_SCHEDULE",
    "DELIVERY_TRANSITIONS",
    "AttemptRecord",
    "DeliveryEvent",
    "DeliveryNotFound",
    "DeliveryPage",
    "DeliveryQuery",
    "DeliveryRecord",
    "DeliveryState",
    "RetrySchedule",
    "SubscriptionNotFound",
    "SubscriptionPage",
    "SubscriptionRecord",
    "WebhooksUnavailable",
    "envelope",
    "webhook_id",
    "webhooks_available",
)


def webhooks_available() -> bool:
    """Whether the ``workflows`` extra is installed (DBOS, cryptography, httpx, standardwebhooks).

    Without it the webhook routes answer 501.
    """
    import importlib.util

    return all(
        importlib.util.find_spec(name) is not None for name in ("dbos", "cryptography", "httpx", "standardwebhooks")
    )
