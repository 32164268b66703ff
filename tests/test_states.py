"""The state table is code: allowed transitions work, every other pair raises."""

from __future__ import annotations

from datetime import timedelta

import pytest

from litestar_registry.core import states
from litestar_registry.core.errors import IllegalTransition
from litestar_registry.core.models import ServiceStatus
from litestar_registry.core.states import Event
from tests.records import T0, make_record

S = ServiceStatus


@pytest.mark.parametrize(
    ("origin", "event", "target"),
    [
        (None, Event.REGISTER_APPROVED, S.ACTIVE),
        (None, Event.REGISTER_PENDING, S.PENDING),
        (S.PENDING, Event.APPROVE, S.ACTIVE),
        (S.PENDING, Event.REJECT, S.REJECTED),
        (S.ACTIVE, Event.CONTACT_DEGRADED, S.DEGRADED),
        (S.ACTIVE, Event.WINDOW_MISSED, S.DEGRADED),
        (S.DEGRADED, Event.CONTACT_HEALTHY, S.ACTIVE),
        (S.ACTIVE, Event.EXPIRE, S.EXPIRED),
        (S.DEGRADED, Event.EXPIRE, S.EXPIRED),
        (S.EXPIRED, Event.REGISTER_APPROVED, S.ACTIVE),
        (S.REJECTED, Event.DEREGISTER, S.DEREGISTERED),
    ],
)
def test_design_table_transitions(origin: ServiceStatus | None, event: Event, target: ServiceStatus) -> None:
    assert states.transition(origin, event) is target


@pytest.mark.parametrize(
    ("origin", "event"),
    [
        (S.ACTIVE, Event.APPROVE),
        (S.REJECTED, Event.APPROVE),
        (S.PENDING, Event.CONTACT_HEALTHY),
        (S.EXPIRED, Event.CONTACT_HEALTHY),
        (S.PENDING, Event.EXPIRE),
        (S.ACTIVE, Event.REGISTER_APPROVED),
        (S.REJECTED, Event.REGISTER_PENDING),
        (None, Event.UPDATE),
    ],
)
def test_illegal_transitions_raise(origin: ServiceStatus | None, event: Event) -> None:
    with pytest.raises(IllegalTransition):
        states.transition(origin, event)


def test_contact_is_taken_only_by_live_services() -> None:
    assert states.sources(Event.CONTACT_HEALTHY) == {S.ACTIVE, S.DEGRADED}


def test_stored_statuses_widen_by_what_time_can_do() -> None:
    assert states.stored_statuses(frozenset({S.EXPIRED})) == {S.EXPIRED, S.ACTIVE, S.DEGRADED}
    assert states.stored_statuses(frozenset({S.DEGRADED})) == {S.DEGRADED, S.ACTIVE}
    assert states.stored_statuses(frozenset({S.PENDING})) == {S.PENDING}


@pytest.mark.parametrize(
    ("seconds", "status", "failures"),
    [
        (0, S.ACTIVE, 0),
        (29.999, S.ACTIVE, 0),
        (30, S.DEGRADED, 1),
        (59, S.DEGRADED, 1),
        (60, S.DEGRADED, 2),
        (90, S.EXPIRED, 3),
    ],
)
def test_advance_counts_missed_windows(seconds: float, status: ServiceStatus, failures: int) -> None:
    record = states.advance(make_record(), T0 + timedelta(seconds=seconds))
    assert (record.status, record.failure_count) == (status, failures)


def test_advance_leaves_pending_and_ended_services_alone() -> None:
    for status in (S.PENDING, S.REJECTED, S.EXPIRED, S.DEREGISTERED):
        record = make_record(status=status, next_check_at=None)
        assert states.advance(record, T0 + timedelta(days=1)) is record


def test_one_window_expiry_goes_straight_to_expired() -> None:
    record = states.advance(make_record(windows=1), T0 + timedelta(seconds=30))
    assert (record.status, record.failure_count, record.next_check_at) == (S.EXPIRED, 1, None)
