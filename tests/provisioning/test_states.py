"""Workflow and step statuses move only along their tables; anything else raises."""

from __future__ import annotations

import itertools

import pytest

from litestar_registry.core.errors import IllegalTransition
from litestar_registry.provisioning.states import (
    ACTIVE_WORKFLOW,
    STEP_TRANSITIONS,
    TERMINAL_WORKFLOW,
    WORKFLOW_TRANSITIONS,
    StepEvent,
    StepStatus,
    WorkflowEvent,
    WorkflowStatus,
    step_sources,
    step_transition,
    workflow_sources,
    workflow_transition,
)

W, WE, S, SE = WorkflowStatus, WorkflowEvent, StepStatus, StepEvent


def test_every_workflow_pair_either_follows_the_table_or_raises() -> None:
    for status, event in itertools.product(W, WE):
        if (status, event) in WORKFLOW_TRANSITIONS:
            assert workflow_transition(status, event) is WORKFLOW_TRANSITIONS[status, event]
        else:
            with pytest.raises(IllegalTransition, match=f"a workflow that is {status.value} cannot take"):
                workflow_transition(status, event)


def test_every_step_pair_either_follows_the_table_or_raises() -> None:
    for status, event in itertools.product(S, SE):
        if (status, event) in STEP_TRANSITIONS:
            assert step_transition(status, event) is STEP_TRANSITIONS[status, event]
        else:
            with pytest.raises(IllegalTransition, match=f"a step that is {status.value} cannot take"):
                step_transition(status, event)


def test_the_workflow_lifecycles_the_runner_walks() -> None:
    def walk(start: WorkflowStatus, *events: WorkflowEvent) -> WorkflowStatus:
        status = start
        for event in events:
            status = workflow_transition(status, event)
        return status

    assert walk(W.PENDING, WE.START, WE.WAIT, WE.RESUME, WE.SUCCEED) is W.SUCCEEDED
    assert walk(W.PENDING, WE.START, WE.WAIT, WE.COMPENSATE, WE.COMPENSATED) is W.COMPENSATED
    assert walk(W.PENDING, WE.START, WE.COMPENSATE, WE.FAIL) is W.FAILED
    assert walk(W.PENDING, WE.START, WE.FAIL, WE.RETRY, WE.START, WE.SUCCEED) is W.SUCCEEDED
    assert walk(W.PENDING, WE.CANCEL, WE.RETRY) is W.PENDING


def test_terminal_workflows_move_only_by_retry_and_compensation_is_not_interrupted() -> None:
    for status in TERMINAL_WORKFLOW:
        allowed = {event for (origin, event) in WORKFLOW_TRANSITIONS if origin is status}
        assert allowed <= {WE.RETRY}
    assert W.SUCCEEDED not in workflow_sources(WE.RETRY)
    assert W.COMPENSATING not in workflow_sources(WE.CANCEL)
    assert ACTIVE_WORKFLOW.isdisjoint(TERMINAL_WORKFLOW)
    assert set(W) == ACTIVE_WORKFLOW | TERMINAL_WORKFLOW


def test_step_lifecycles() -> None:
    assert step_transition(step_transition(S.PENDING, SE.START), SE.WAIT) is S.WAITING
    assert step_transition(S.WAITING, SE.SUCCEED) is S.SUCCEEDED
    assert step_transition(step_transition(S.SUCCEEDED, SE.COMPENSATE), SE.COMPENSATED) is S.COMPENSATED
    assert step_transition(S.COMPENSATING, SE.COMPENSATION_FAILED) is S.FAILED
    assert step_sources(SE.RETRY) == {S.FAILED, S.SKIPPED, S.CANCELLED, S.COMPENSATED}
    with pytest.raises(IllegalTransition):
        step_transition(S.SUCCEEDED, SE.SUCCEED)  # a repeated callback cannot complete a step twice
    with pytest.raises(IllegalTransition):
        step_transition(S.CANCELLED, SE.SUCCEED)
