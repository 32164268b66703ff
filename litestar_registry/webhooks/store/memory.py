"""The in-memory webhook store: one process, nothing kept across restarts (tests, demos, beside the memory store).

Every method runs without awaiting in between, so on one event loop each one is atomic, as a SQL transaction is.
"""

# The methods inherit their docstrings from WebhookStore.
# ruff: noqa: D102

from __future__ import annotations

import bisect
from datetime import datetime

import msgspec

from litestar_registry.webhooks.errors import DeliveryNotFound
from litestar_registry.webhooks.models import (
    AttemptRecord,
    DeliveryPage,
    DeliveryQuery,
    DeliveryRecord,
    SubscriptionPage,
    SubscriptionRecord,
    webhook_id,
)
from litestar_registry.webhooks.states import DeliveryEvent, DeliveryState, delivery_sources
from litestar_registry.webhooks.store.base import (
    RELAY_CURSOR,
    Outcome,
    WebhookStore,
    outcome_values,
    replay_values,
)

__all__ = ("MemoryWebhookStore",)

_IN_FLIGHT = frozenset({DeliveryState.PENDING, DeliveryState.RETRYING})


class MemoryWebhookStore(WebhookStore):
    """Webhook records in dictionaries, with sorted key lists standing in for the indexes."""

    def __init__(self) -> None:
        self._subscriptions: dict[str, SubscriptionRecord] = {}
        self._ids: list[str] = []
        self._deliveries: dict[str, DeliveryRecord] = {}
        self._by_subscription: dict[str, list[int]] = {}  # event ids, ascending
        self._attempts: dict[tuple[str, int, int], AttemptRecord] = {}
        self._cursors: dict[str, int] = {}

    # Subscriptions

    async def create_subscription(self, subscription: SubscriptionRecord) -> None:
        if subscription.id in self._subscriptions:
            raise ValueError(f"subscription {subscription.id} exists")
        self._subscriptions[subscription.id] = subscription
        bisect.insort(self._ids, subscription.id)
        self._by_subscription[subscription.id] = []

    async def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        return self._subscriptions.get(subscription_id)

    async def find_subscriptions(self, *, after: str | None, limit: int) -> SubscriptionPage:
        start = bisect.bisect_right(self._ids, after) if after is not None else 0
        ids = self._ids[start : start + limit + 1]
        items = [self._subscriptions[key] for key in ids[:limit]]
        return SubscriptionPage(items=items, next_after=items[-1].id if len(ids) > limit else None)

    async def enabled_subscriptions(self) -> list[SubscriptionRecord]:
        return [self._subscriptions[key] for key in self._ids if self._subscriptions[key].enabled]

    async def replace_subscription(self, subscription: SubscriptionRecord, *, expected_revision: int) -> bool:
        current = self._subscriptions.get(subscription.id)
        if current is None or current.revision != expected_revision:
            return False
        self._subscriptions[subscription.id] = subscription
        return True

    async def delete_subscription(self, subscription_id: str) -> bool:
        if self._subscriptions.pop(subscription_id, None) is None:
            return False
        self._ids.remove(subscription_id)
        gone = {webhook_id(subscription_id, event_id) for event_id in self._by_subscription.pop(subscription_id, [])}
        for delivery_id in gone:
            del self._deliveries[delivery_id]
        for key in [key for key in self._attempts if key[0] in gone]:
            del self._attempts[key]
        return True

    # Deliveries

    async def add_delivery(self, delivery: DeliveryRecord) -> bool:
        if delivery.webhook_id in self._deliveries or delivery.subscription_id not in self._subscriptions:
            return False
        self._deliveries[delivery.webhook_id] = delivery
        bisect.insort(self._by_subscription[delivery.subscription_id], delivery.event_id)
        return True

    async def get_delivery(self, webhook_id: str) -> DeliveryRecord | None:
        return self._deliveries.get(webhook_id)

    async def find_deliveries(self, query: DeliveryQuery) -> DeliveryPage:
        event_ids = self._by_subscription.get(query.subscription_id, [])
        end = bisect.bisect_left(event_ids, query.after) if query.after is not None else len(event_ids)
        items: list[DeliveryRecord] = []
        more = False
        for index in range(end - 1, -1, -1):
            delivery = self._deliveries[webhook_id(query.subscription_id, event_ids[index])]
            if query.states is not None and delivery.state not in query.states:
                continue
            if len(items) == query.limit:
                more = True
                break
            items.append(delivery)
        return DeliveryPage(items=items, next_after=items[-1].event_id if more else None)

    async def in_flight_deliveries(self, limit: int = 1000) -> list[DeliveryRecord]:
        found = sorted((d for d in self._deliveries.values() if d.state in _IN_FLIGHT), key=lambda d: d.event_id)
        return found[:limit]

    async def replay_delivery(self, webhook_id: str, *, at: datetime) -> DeliveryRecord:
        current = self._deliveries.get(webhook_id)
        if current is None:
            raise DeliveryNotFound(f"no delivery {webhook_id!r}")
        updated = msgspec.structs.replace(current, **replay_values(current, at))
        self._deliveries[webhook_id] = updated
        return updated

    async def abandon_delivery(self, webhook_id: str, *, run: int, at: datetime, reason: str) -> DeliveryRecord | None:
        current = self._deliveries.get(webhook_id)
        if current is None:
            return None
        if current.run != run or current.state not in delivery_sources(DeliveryEvent.ABANDON):
            return current
        updated = msgspec.structs.replace(
            current,
            state=DeliveryState.DEAD,
            updated_at=at,
            next_attempt_at=None,
            last_error=reason,
            finished_at=at,
        )
        self._deliveries[webhook_id] = updated
        return updated

    # Attempts

    async def get_attempt(self, webhook_id: str, run: int, attempt: int) -> AttemptRecord | None:
        return self._attempts.get((webhook_id, run, attempt))

    async def start_attempt(self, attempt: AttemptRecord) -> None:
        if attempt.webhook_id in self._deliveries:
            self._attempts[attempt.webhook_id, attempt.run, attempt.attempt] = attempt

    async def finish_attempt(self, attempt: AttemptRecord, outcome: Outcome) -> DeliveryRecord | None:
        current = self._deliveries.get(attempt.webhook_id)
        if current is None:
            return None
        values = outcome_values(current, attempt, outcome)  # may raise IllegalTransition: nothing written then
        if values is None:
            return current  # written before, with the attempt, in one write
        self._attempts[attempt.webhook_id, attempt.run, attempt.attempt] = attempt
        updated = msgspec.structs.replace(current, **values)
        self._deliveries[attempt.webhook_id] = updated
        if outcome.event is DeliveryEvent.GONE:
            subscription = self._subscriptions.get(current.subscription_id)
            if subscription is not None and subscription.enabled:
                self._subscriptions[subscription.id] = msgspec.structs.replace(
                    subscription,
                    enabled=False,
                    disabled_reason=outcome.disable_reason,
                    updated_at=outcome.at,
                    revision=subscription.revision + 1,
                )
        return updated

    async def list_attempts(self, webhook_id: str) -> list[AttemptRecord]:
        return [self._attempts[key] for key in sorted(key for key in self._attempts if key[0] == webhook_id)]

    # The relay's cursor

    async def get_cursor(self, name: str = RELAY_CURSOR) -> int:
        return self._cursors.get(name, 0)

    async def advance_cursor(self, to: int, name: str = RELAY_CURSOR) -> int:
        self._cursors[name] = max(self._cursors.get(name, 0), to)
        return self._cursors[name]
