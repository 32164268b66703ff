"""The webhook store protocol, and the write rules every backend applies the same way.

A backend keeps subscriptions, deliveries, their attempts, and the relay's cursor. The rules for an attempt's outcome
live here as pure functions, so the memory and SQL stores decide alike:

* an outcome carries the ``run`` and the ``attempt`` it comes from; it applies only to the delivery's current run and
  only as the next attempt (``attempts + 1``): anything else is a replay of a write made before a crash, and changes
  nothing;
* otherwise the transition must be in the state table (:mod:`..states`), or ``IllegalTransition`` is raised and
  nothing is written.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from litestar_registry.webhooks.models import (
    AttemptRecord,
    DeliveryPage,
    DeliveryQuery,
    DeliveryRecord,
    SubscriptionPage,
    SubscriptionRecord,
)
from litestar_registry.webhooks.states import FINISHED, DeliveryEvent, DeliveryState, delivery_transition

__all__ = ("RELAY_CURSOR", "Outcome", "WebhookStore", "outcome_values", "replay_values")

RELAY_CURSOR = "relay"
"""The name of the relay's cursor: the last log id whose deliveries were all started."""


class Outcome:
    """What an attempt ended with, as the delivery workflow hands it to :meth:`WebhookStore.finish_attempt`."""

    __slots__ = ("at", "disable_reason", "event", "next_attempt_at")

    def __init__(
        self,
        event: DeliveryEvent,
        *,
        at: datetime,
        next_attempt_at: datetime | None = None,
        disable_reason: str | None = None,
    ) -> None:
        self.event = event
        self.at = at
        self.next_attempt_at = next_attempt_at
        self.disable_reason = disable_reason
        """With ``GONE``: the subscription is disabled for this reason, in the same write."""


def outcome_values(current: DeliveryRecord, attempt: AttemptRecord, outcome: Outcome) -> dict[str, Any] | None:
    """The fields ``outcome`` sets on ``current``; ``None`` for a replayed write. Raises ``IllegalTransition``."""
    if attempt.run != current.run or attempt.attempt != current.attempts + 1:
        return None
    state = delivery_transition(current.state, outcome.event)
    return {
        "state": state,
        "attempts": attempt.attempt,
        "updated_at": outcome.at,
        "next_attempt_at": outcome.next_attempt_at if state is DeliveryState.RETRYING else None,
        "last_status_code": attempt.status_code,
        "last_error": attempt.error,
        "finished_at": outcome.at if state in FINISHED else None,
    }


def replay_values(current: DeliveryRecord, at: datetime) -> dict[str, Any]:
    """The fields a replay sets: the next run, pending again (``IllegalTransition`` unless the delivery finished)."""
    state = delivery_transition(current.state, DeliveryEvent.REPLAY)
    return {
        "state": state,
        "run": current.run + 1,
        "attempts": 0,
        "updated_at": at,
        "next_attempt_at": None,
        "finished_at": None,
    }


class WebhookStore(ABC):
    """Persistence for webhook subscriptions, deliveries, attempts and the relay's cursor."""

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire connections (and, where configured, create the schema)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release every connection."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # Subscriptions

    @abstractmethod
    async def create_subscription(self, subscription: SubscriptionRecord) -> None:
        """Insert a new subscription."""

    @abstractmethod
    async def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        """The subscription with that id, or ``None``."""

    @abstractmethod
    async def find_subscriptions(self, *, after: str | None, limit: int) -> SubscriptionPage:
        """One page of subscriptions, oldest first, after the subscription id ``after`` (exclusive)."""

    @abstractmethod
    async def enabled_subscriptions(self) -> list[SubscriptionRecord]:
        """Every enabled subscription (what the relay matches events against), oldest first."""

    @abstractmethod
    async def replace_subscription(self, subscription: SubscriptionRecord, *, expected_revision: int) -> bool:
        """Overwrite the subscription if its revision is still ``expected_revision``; whether it was written.

        ``subscription.revision`` is the revision it is stored with (``expected_revision + 1``).
        """

    @abstractmethod
    async def delete_subscription(self, subscription_id: str) -> bool:
        """Remove the subscription with its deliveries and their attempts; whether it existed."""

    # Deliveries

    @abstractmethod
    async def add_delivery(self, delivery: DeliveryRecord) -> bool:
        """Insert the delivery unless one with its ``webhook_id`` exists (then nothing changes); whether it was new.

        Several relays may add the same delivery: the store lets one win, atomically.
        """

    @abstractmethod
    async def get_delivery(self, webhook_id: str) -> DeliveryRecord | None:
        """The delivery with that ``webhook-id``, or ``None``."""

    @abstractmethod
    async def find_deliveries(self, query: DeliveryQuery) -> DeliveryPage:
        """One page of a subscription's deliveries, newest event first, matching the query's states."""

    @abstractmethod
    async def in_flight_deliveries(self, limit: int = 1000) -> list[DeliveryRecord]:
        """Deliveries pending or retrying, of every subscription, oldest event first.

        What a start checks for a workflow that a crash kept from starting.
        """

    @abstractmethod
    async def replay_delivery(self, webhook_id: str, *, at: datetime) -> DeliveryRecord:
        """Start the delivery's next run: pending again, no attempts yet (see :func:`replay_values`), atomically.

        Raises:
            DeliveryNotFound: no such delivery.
            IllegalTransition: it has not finished (delivered or dead).
        """

    @abstractmethod
    async def abandon_delivery(self, webhook_id: str, *, run: int, at: datetime, reason: str) -> DeliveryRecord | None:
        """Move the delivery's run ``run`` to ``dead`` (``ABANDON``) if it is still in flight.

        Returns the delivery as stored (``None`` if it is gone); a run that finished or was superseded is left as is.
        """

    # Attempts

    @abstractmethod
    async def get_attempt(self, webhook_id: str, run: int, attempt: int) -> AttemptRecord | None:
        """The attempt, or ``None``."""

    @abstractmethod
    async def start_attempt(self, attempt: AttemptRecord) -> None:
        """Record that an attempt started (again, after a crash: the earlier record is replaced)."""

    @abstractmethod
    async def finish_attempt(self, attempt: AttemptRecord, outcome: Outcome) -> DeliveryRecord | None:
        """Record how the attempt ended and move its delivery by ``outcome``, in one atomic write.

        With ``outcome.event`` ``GONE``, the delivery's subscription is disabled (``outcome.disable_reason``) in the
        same write. A replayed outcome (see the module docstring) writes nothing: it was written, attempt and all.

        Returns:
            The delivery as stored now; ``None`` when it no longer exists (its subscription was deleted).

        Raises:
            IllegalTransition: the state table refuses the event.
        """

    @abstractmethod
    async def list_attempts(self, webhook_id: str) -> list[AttemptRecord]:
        """Every attempt of the delivery, in every run, in order (run, then attempt)."""

    # The relay's cursor

    @abstractmethod
    async def get_cursor(self, name: str = RELAY_CURSOR) -> int:
        """The cursor's position (0 before the relay ever advanced it)."""

    @abstractmethod
    async def advance_cursor(self, to: int, name: str = RELAY_CURSOR) -> int:
        """Move the cursor to ``to`` unless it is there or further already (it never goes back); its position."""
