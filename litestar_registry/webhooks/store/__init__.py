"""The webhook read model: the store protocol and its backends (memory here; SQL in :mod:`.sqlalchemy`)."""

from __future__ import annotations

from litestar_registry.webhooks.store.base import RELAY_CURSOR, Outcome, WebhookStore
from litestar_registry.webhooks.store.memory import MemoryWebhookStore

__all__ = ("RELAY_CURSOR", "MemoryWebhookStore", "Outcome", "WebhookStore")
