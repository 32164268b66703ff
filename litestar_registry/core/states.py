"""The registry's state table, and the one function that moves a service through time.

Every status change in the registry goes through :func:`transition`; a pair that the table does not list raises
:class:`~litestar_registry.core.errors.IllegalTransition` instead of overwriting silently. :func:`advance` is the
time-driven part (missed windows, expiry): the sweeper persists what it returns and reads show it, so a service that
went silent looks expired at once, whether or not a sweep has run.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Mapping
from datetime import datetime

import msgspec

from litestar_registry.core.errors import IllegalTransition
from litestar_registry.core.models import ServiceRecord, ServiceStatus

__all__ = ("LIVE", "TRANSITIONS", "Event", "advance", "is_live", "sources", "stored_statuses", "transition")

S = ServiceStatus


class Event(enum.StrEnum):
    """What can happen to a service."""

    REGISTER_APPROVED = "register_approved"
    REGISTER_PENDING = "register_pending"
    UPDATE = "update"
    APPROVE = "approve"
    REJECT = "reject"
    CONTACT_HEALTHY = "contact_healthy"
    CONTACT_DEGRADED = "contact_degraded"
    WINDOW_MISSED = "window_missed"
    EXPIRE = "expire"
    DEREGISTER = "deregister"


LIVE: frozenset[ServiceStatus] = frozenset({S.ACTIVE, S.DEGRADED})
"""Statuses that keep time: contact refreshes them, silence degrades and then expires them."""

_GONE = (S.EXPIRED, S.DEREGISTERED)

TRANSITIONS: Mapping[tuple[ServiceStatus | None, Event], ServiceStatus] = {
    # A new slug, or one whose earlier life ended, registers afresh.
    **{(origin, Event.REGISTER_APPROVED): S.ACTIVE for origin in (None, *_GONE)},
    **{(origin, Event.REGISTER_PENDING): S.PENDING for origin in (None, *_GONE)},
    # Re-registration (PUT, or a TTL re-register) replaces data and keeps the status.
    **{(origin, Event.UPDATE): origin for origin in (S.PENDING, S.ACTIVE, S.DEGRADED)},
    (S.PENDING, Event.APPROVE): S.ACTIVE,
    (S.PENDING, Event.REJECT): S.REJECTED,
    **{(origin, Event.CONTACT_HEALTHY): S.ACTIVE for origin in LIVE},
    **{(origin, Event.CONTACT_DEGRADED): S.DEGRADED for origin in LIVE},
    **{(origin, Event.WINDOW_MISSED): S.DEGRADED for origin in LIVE},
    **{(origin, Event.EXPIRE): S.EXPIRED for origin in LIVE},
    **{(origin, Event.DEREGISTER): S.DEREGISTERED for origin in S},
}


def transition(current: ServiceStatus | None, event: Event) -> ServiceStatus:
    """Return the status that ``event`` moves ``current`` to; raise ``IllegalTransition`` if the table has none."""
    try:
        return TRANSITIONS[current, event]
    except KeyError:
        origin = current.value if current else "(none)"
        raise IllegalTransition(f"a service that is {origin} cannot take '{event.value}'") from None


@functools.cache
def sources(event: Event) -> frozenset[ServiceStatus]:
    """Every status from which ``event`` is allowed (what a store's conditional update may match)."""
    return frozenset(origin for origin, evt in TRANSITIONS if evt is event and origin is not None)


def stored_statuses(wanted: frozenset[ServiceStatus]) -> frozenset[ServiceStatus]:
    """The stored statuses that may show as one of ``wanted`` once silence is applied by :func:`advance`.

    A store filters on what it holds; a service stored ``active`` may already be degraded or expired by the clock.
    """
    extra = {
        origin
        for (origin, event), target in TRANSITIONS.items()
        if event in (Event.WINDOW_MISSED, Event.EXPIRE) and target in wanted and origin is not None
    }
    return wanted | extra


def is_live(record: ServiceRecord, now: datetime) -> bool:
    """Whether the service is active or degraded and has not gone silent past its expiry."""
    return record.status in LIVE and now < record.expires_at


def advance(record: ServiceRecord, now: datetime) -> ServiceRecord:
    """Return ``record`` as silence since its last contact leaves it at ``now``.

    Each whole TTL window missed since ``last_seen_at`` adds one to the failure count and degrades the service;
    reaching ``expires_at`` expires it. A record that is not live, or whose deadline is still ahead, comes back as is.
    """
    if record.status not in LIVE or now < record.deadline_at:
        return record
    if now >= record.expires_at:
        return msgspec.structs.replace(
            record,
            status=transition(record.status, Event.EXPIRE),
            failure_count=record.expiry_windows,
            next_check_at=None,
        )
    missed = max(1, math.floor((now - record.last_seen_at) / record.ttl))
    return msgspec.structs.replace(
        record,
        status=transition(record.status, Event.WINDOW_MISSED),
        failure_count=missed,
        next_check_at=min(record.last_seen_at + record.ttl * (missed + 1), record.expires_at),
    )
