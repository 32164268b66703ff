"""The state table of webhook deliveries: every change of a delivery's state goes through :func:`delivery_transition`.

A pair the table does not list raises :class:`~litestar_registry.core.errors.IllegalTransition` instead of
overwriting; the stores check the same table when they write, so a late or repeated write (an attempt's outcome
replayed after a crash) cannot move a delivery out of a state it has left.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from litestar_registry.core.errors import IllegalTransition

__all__ = (
    "DELIVERY_TRANSITIONS",
    "FINISHED",
    "DeliveryEvent",
    "DeliveryState",
    "delivery_sources",
    "delivery_transition",
)


class DeliveryState(enum.StrEnum):
    """Where the delivery of one event to one subscription stands."""

    PENDING = "pending"
    """Recorded; its first attempt (of this run) has not answered yet."""
    RETRYING = "retrying"
    """An attempt failed; the next one is due at ``next_attempt_at``."""
    DELIVERED = "delivered"
    """The subscriber answered 2xx in time."""
    DEAD = "dead"
    """Given up: the last attempt of the schedule failed, the subscriber answered 410, or its subscription was
    disabled while the delivery waited. An admin may replay it."""


class DeliveryEvent(enum.StrEnum):
    """What can happen to a delivery."""

    FAIL = "fail"
    """An attempt failed and another one follows."""
    SUCCEED = "succeed"
    """An attempt got a 2xx in time."""
    EXHAUST = "exhaust"
    """The last attempt of the schedule failed."""
    GONE = "gone"
    """The subscriber answered 410 Gone: its subscription is disabled."""
    ABANDON = "abandon"
    """The subscription was disabled while the delivery waited for its next attempt."""
    REPLAY = "replay"
    """An admin sends it again: a new run, with the same ``webhook-id``."""


D = DeliveryState
_IN_FLIGHT = (D.PENDING, D.RETRYING)

DELIVERY_TRANSITIONS: Mapping[tuple[DeliveryState, DeliveryEvent], DeliveryState] = {
    **{(origin, DeliveryEvent.FAIL): D.RETRYING for origin in _IN_FLIGHT},
    **{(origin, DeliveryEvent.SUCCEED): D.DELIVERED for origin in _IN_FLIGHT},
    **{(origin, DeliveryEvent.EXHAUST): D.DEAD for origin in _IN_FLIGHT},
    **{(origin, DeliveryEvent.GONE): D.DEAD for origin in _IN_FLIGHT},
    **{(origin, DeliveryEvent.ABANDON): D.DEAD for origin in _IN_FLIGHT},
    **{(origin, DeliveryEvent.REPLAY): D.PENDING for origin in (D.DELIVERED, D.DEAD)},
}

FINISHED: frozenset[DeliveryState] = frozenset({D.DELIVERED, D.DEAD})
"""States no attempt follows; only a replay moves a delivery out of one."""


def delivery_transition(current: DeliveryState, event: DeliveryEvent) -> DeliveryState:
    """The state ``event`` moves a delivery in ``current`` to; ``IllegalTransition`` if the table has none."""
    try:
        return DELIVERY_TRANSITIONS[current, event]
    except KeyError:
        raise IllegalTransition(f"a delivery that is {current.value} cannot take '{event.value}'") from None


def delivery_sources(event: DeliveryEvent) -> frozenset[DeliveryState]:
    """Every state from which ``event`` is allowed (what a conditional update may match)."""
    return frozenset(origin for origin, evt in DELIVERY_TRANSITIONS if evt is event)
