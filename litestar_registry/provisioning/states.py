"""The state tables of provisioning: one for workflows, one for their steps.

Every status change of a workflow or a step goes through :func:`workflow_transition` or :func:`step_transition`; a pair
the table does not list raises :class:`~litestar_registry.core.errors.IllegalTransition` instead of overwriting. The
stores check the same tables when they write, so a late writer (a runner that was cancelled, a replayed write) cannot
move a record out of a state it has left.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from litestar_registry.core.errors import IllegalTransition

__all__ = (
    "ACTIVE_WORKFLOW",
    "STEP_TRANSITIONS",
    "TERMINAL_WORKFLOW",
    "WORKFLOW_TRANSITIONS",
    "StepEvent",
    "StepStatus",
    "WorkflowEvent",
    "WorkflowStatus",
    "step_sources",
    "step_transition",
    "workflow_sources",
    "workflow_transition",
)


class WorkflowStatus(enum.StrEnum):
    """Where a provisioning workflow stands."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"
    CANCELLED = "cancelled"


class WorkflowEvent(enum.StrEnum):
    """What can happen to a workflow."""

    START = "start"
    WAIT = "wait"
    RESUME = "resume"
    SUCCEED = "succeed"
    FAIL = "fail"
    COMPENSATE = "compensate"
    COMPENSATED = "compensated"
    CANCEL = "cancel"
    RETRY = "retry"


class StepStatus(enum.StrEnum):
    """Where one step of a workflow stands."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"
    CANCELLED = "cancelled"


class StepEvent(enum.StrEnum):
    """What can happen to a step."""

    START = "start"
    WAIT = "wait"
    SUCCEED = "succeed"
    FAIL = "fail"
    SKIP = "skip"
    CANCEL = "cancel"
    COMPENSATE = "compensate"
    COMPENSATED = "compensated"
    COMPENSATION_FAILED = "compensation_failed"
    RETRY = "retry"


W = WorkflowStatus
S = StepStatus

ACTIVE_WORKFLOW: frozenset[WorkflowStatus] = frozenset({W.PENDING, W.RUNNING, W.WAITING, W.COMPENSATING})
"""Workflows still at work: a service with one of these is not deregistered (its dependents check)."""

TERMINAL_WORKFLOW: frozenset[WorkflowStatus] = frozenset({W.SUCCEEDED, W.FAILED, W.COMPENSATED, W.CANCELLED})
"""Workflows that are done; only ``retry`` (failed, compensated, cancelled) moves one of them again."""

_IN_FLIGHT = (W.RUNNING, W.WAITING)

WORKFLOW_TRANSITIONS: Mapping[tuple[WorkflowStatus, WorkflowEvent], WorkflowStatus] = {
    (W.PENDING, WorkflowEvent.START): W.RUNNING,
    (W.RUNNING, WorkflowEvent.WAIT): W.WAITING,
    (W.WAITING, WorkflowEvent.RESUME): W.RUNNING,
    **{(origin, WorkflowEvent.SUCCEED): W.SUCCEEDED for origin in _IN_FLIGHT},
    # A step failed for good and no completed step has a compensation; or a compensation failed in turn.
    **{(origin, WorkflowEvent.FAIL): W.FAILED for origin in (*_IN_FLIGHT, W.COMPENSATING)},
    **{(origin, WorkflowEvent.COMPENSATE): W.COMPENSATING for origin in _IN_FLIGHT},
    (W.COMPENSATING, WorkflowEvent.COMPENSATED): W.COMPENSATED,
    # Compensations are not interrupted: a workflow that is undoing its work finishes undoing it.
    **{(origin, WorkflowEvent.CANCEL): W.CANCELLED for origin in (W.PENDING, *_IN_FLIGHT)},
    **{(origin, WorkflowEvent.RETRY): W.PENDING for origin in (W.FAILED, W.COMPENSATED, W.CANCELLED)},
}

STEP_TRANSITIONS: Mapping[tuple[StepStatus, StepEvent], StepStatus] = {
    (S.PENDING, StepEvent.START): S.RUNNING,
    # A callback step handed out its token and waits for the callback.
    (S.RUNNING, StepEvent.WAIT): S.WAITING,
    **{(origin, StepEvent.SUCCEED): S.SUCCEEDED for origin in (S.RUNNING, S.WAITING)},
    **{(origin, StepEvent.FAIL): S.FAILED for origin in (S.RUNNING, S.WAITING)},
    # The workflow failed (or was cancelled) before the step could start.
    (S.PENDING, StepEvent.SKIP): S.SKIPPED,
    **{(origin, StepEvent.CANCEL): S.CANCELLED for origin in (S.PENDING, S.RUNNING, S.WAITING)},
    (S.SUCCEEDED, StepEvent.COMPENSATE): S.COMPENSATING,
    (S.COMPENSATING, StepEvent.COMPENSATED): S.COMPENSATED,
    (S.COMPENSATING, StepEvent.COMPENSATION_FAILED): S.FAILED,
    # A retried workflow runs again every step that did not succeed (compensated ones included); succeeded steps keep
    # their outputs.
    **{(origin, StepEvent.RETRY): S.PENDING for origin in (S.FAILED, S.SKIPPED, S.CANCELLED, S.COMPENSATED)},
}


def workflow_transition(current: WorkflowStatus, event: WorkflowEvent) -> WorkflowStatus:
    """The status ``event`` moves a workflow in ``current`` to; ``IllegalTransition`` if the table has none."""
    try:
        return WORKFLOW_TRANSITIONS[current, event]
    except KeyError:
        raise IllegalTransition(f"a workflow that is {current.value} cannot take '{event.value}'") from None


def step_transition(current: StepStatus, event: StepEvent) -> StepStatus:
    """The status ``event`` moves a step in ``current`` to; ``IllegalTransition`` if the table has none."""
    try:
        return STEP_TRANSITIONS[current, event]
    except KeyError:
        raise IllegalTransition(f"a step that is {current.value} cannot take '{event.value}'") from None


def workflow_sources(event: WorkflowEvent) -> frozenset[WorkflowStatus]:
    """Every workflow status from which ``event`` is allowed (what a conditional update may match)."""
    return frozenset(origin for origin, evt in WORKFLOW_TRANSITIONS if evt is event)


def step_sources(event: StepEvent) -> frozenset[StepStatus]:
    """Every step status from which ``event`` is allowed."""
    return frozenset(origin for origin, evt in STEP_TRANSITIONS if evt is event)
