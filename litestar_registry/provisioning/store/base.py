"""The provisioning store protocol, and the write rules every backend applies the same way.

A backend keeps four things: workflows, their steps, every execution of a step, and callback tokens (hashes only).
The rules for a runner's write live here, as pure functions, so the memory and SQL stores decide alike:

* a write carries the ``run`` it comes from; a write from an earlier run (a runner superseded by a retry) raises
  ``StaleWrite``;
* a write carries the ``version`` it moves the workflow to: the workflow's ``version`` is the high-water mark of every
  write to it or its steps, so a write at or below it is a replay (the DBOS workflow re-executing after a crash) and
  changes nothing;
* otherwise the transition must be in the state table, or ``IllegalTransition`` is raised and nothing is written.

The workflow topics of the change log are decided here too (:func:`started_events`, :func:`workflow_change_events`,
:func:`step_change_events`): a store appends them to the registry's log in the same atomic write as the change that
causes them, so a replay, which writes nothing, appends nothing either.
"""

from __future__ import annotations

import enum
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import msgspec

from litestar_registry.core.errors import StaleWrite
from litestar_registry.core.events import EventDraft, Topic
from litestar_registry.provisioning.models import (
    StepChange,
    StepExecution,
    StepRecord,
    WorkflowChange,
    WorkflowPage,
    WorkflowQuery,
    WorkflowRecord,
)
from litestar_registry.provisioning.states import (
    TERMINAL_WORKFLOW,
    StepEvent,
    StepStatus,
    WorkflowEvent,
    WorkflowStatus,
    step_transition,
    workflow_transition,
)
from litestar_registry.provisioning.tokens import CallbackTokenRecord

__all__ = (
    "Applied",
    "EventsHook",
    "ProvisioningStore",
    "cancel_values",
    "retry_values",
    "started_events",
    "step_change_events",
    "step_change_values",
    "workflow_change_events",
    "workflow_change_values",
)

logger = logging.getLogger("litestar_registry.provisioning")

EventsHook = Callable[[], Awaitable[None]]
"""Awaited after a write appended workflow events to the change log (the registry's ``on_events``)."""


class Applied(enum.StrEnum):
    """What became of a runner's write."""

    APPLIED = "applied"
    REPLAYED = "replayed"
    """At or below the stored version: written before, by this run (before a crash); nothing changed."""


_STEP_ENDS = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED})


def workflow_change_values(current: WorkflowRecord, change: WorkflowChange) -> dict[str, Any] | None:
    """The fields ``change`` sets on ``current``; ``None`` for a replay. Raises ``StaleWrite``/``IllegalTransition``."""
    if change.run != current.run:
        raise StaleWrite(f"workflow {current.id} is at run {current.run}; a write from run {change.run} is stale")
    if change.version <= current.version:
        return None
    status = workflow_transition(current.status, change.event)
    values: dict[str, Any] = {"status": status, "version": change.version, "updated_at": change.at}
    if change.event is WorkflowEvent.START and current.started_at is None:
        values["started_at"] = change.at
    if status in TERMINAL_WORKFLOW:
        values["finished_at"] = change.at
    if change.error is not None:
        values["error"] = change.error
    return values


def step_change_values(workflow: WorkflowRecord, step: StepRecord, change: StepChange) -> dict[str, Any] | None:
    """The fields ``change`` sets on ``step`` of ``workflow``; ``None`` for a replay. Raises like above.

    The store also moves the workflow's ``version`` (and ``updated_at``) to ``change.version``, in the same write.
    """
    if change.run != workflow.run:
        raise StaleWrite(f"workflow {workflow.id} is at run {workflow.run}; a write from run {change.run} is stale")
    if change.version <= workflow.version:
        return None
    status = step_transition(step.status, change.event)
    values: dict[str, Any] = {"status": status, "version": change.version}
    if change.event is StepEvent.START:
        values["started_at"] = change.at
        values["finished_at"] = None
        values["error"] = None
    if status in _STEP_ENDS or status is StepStatus.COMPENSATED:
        values["finished_at"] = change.at
    if change.error is not None:
        values["error"] = change.error
    if change.outputs is not None:
        values["outputs"] = change.outputs
    if change.completed_seq is not None:
        values["completed_seq"] = change.completed_seq
    return values


def cancel_values(current: WorkflowRecord, at: datetime) -> dict[str, Any]:
    """The fields a cancel sets on a workflow (``IllegalTransition`` from a status that cannot be cancelled)."""
    status = workflow_transition(current.status, WorkflowEvent.CANCEL)
    return {"status": status, "version": current.version + 1, "updated_at": at, "finished_at": at}


def retry_values(current: WorkflowRecord, at: datetime, dbos_workflow_id: str) -> dict[str, Any]:
    """The fields a retry sets on a workflow: the next run, pending again (``IllegalTransition`` unless it ended)."""
    status = workflow_transition(current.status, WorkflowEvent.RETRY)
    return {
        "status": status,
        "version": current.version + 1,
        "run": current.run + 1,
        "dbos_workflow_id": dbos_workflow_id,
        "updated_at": at,
        "finished_at": None,
        "error": None,
    }


def _draft(topic: Topic, workflow: WorkflowRecord, at: datetime, **fields: Any) -> EventDraft:
    """The event ``topic`` about ``workflow``: its id is the subject, its tenant the event's."""
    data: dict[str, Any] = {
        "workflow_id": workflow.id,
        "tenant": workflow.tenant,
        "service_slug": workflow.service_slug,
        "definition": workflow.definition,
        **msgspec.to_builtins(fields),
    }
    return EventDraft(topic=topic, occurred_at=at, subject=workflow.id, tenant=workflow.tenant, data=data)


def started_events(workflow: WorkflowRecord, steps: Sequence[StepRecord], at: datetime) -> list[EventDraft]:
    """``workflow.started`` of a run that was just recorded (a new workflow, or a retry): ``steps`` it will run.

    Those are the steps left pending: every step of a new workflow, the steps that did not succeed of a retry.
    """
    pending = [step.name for step in sorted(steps, key=lambda step: step.position) if step.status is StepStatus.PENDING]
    return [_draft(Topic.WORKFLOW_STARTED, workflow, at, steps=pending)]


def workflow_change_events(current: WorkflowRecord, values: dict[str, Any], at: datetime) -> list[EventDraft]:
    """The events of a write setting ``values`` (:func:`workflow_change_values`, :func:`cancel_values`) on ``current``.

    The workflow's end: ``workflow.succeeded``, or ``workflow.failed`` when it failed, compensated its completed steps
    after a failure, or was cancelled (``cancelled``). Other moves (started, waiting, compensating) append nothing.
    """
    status = values.get("status")
    if status is WorkflowStatus.SUCCEEDED:
        return [_draft(Topic.WORKFLOW_SUCCEEDED, current, at)]
    if status in (WorkflowStatus.FAILED, WorkflowStatus.COMPENSATED, WorkflowStatus.CANCELLED):
        error = values.get("error", current.error)
        cancelled = status is WorkflowStatus.CANCELLED
        return [_draft(Topic.WORKFLOW_FAILED, current, at, error=error, cancelled=cancelled)]
    return []


def step_change_events(
    workflow: WorkflowRecord, step: StepRecord, change: StepChange, values: dict[str, Any]
) -> list[EventDraft]:
    """The events of a runner's write that sets ``values`` (:func:`step_change_values`) on ``step``.

    ``workflow.step_waiting`` when the step handed out its callback token and waits (the token is never in an event,
    only when it expires); ``workflow.step_failed`` when it failed for good (or its compensation did).
    """
    status = values.get("status")
    if status is StepStatus.WAITING:
        return [_draft(Topic.WORKFLOW_STEP_WAITING, workflow, change.at, step=step.name, expires_at=change.expires_at)]
    if status is StepStatus.FAILED:
        error = values.get("error", step.error)
        return [_draft(Topic.WORKFLOW_STEP_FAILED, workflow, change.at, step=step.name, error=error)]
    return []


CANCELLABLE_STEPS = frozenset({StepStatus.PENDING, StepStatus.RUNNING, StepStatus.WAITING})
RETRIED_STEPS = frozenset({StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED, StepStatus.COMPENSATED})


class ProvisioningStore(ABC):
    """Persistence for the provisioning read model and callback tokens.

    Writes that change a workflow's course append its topics to the registry's change log in the same atomic write,
    then await :attr:`on_events`.
    """

    on_events: EventsHook | None = None
    """Awaited after a write appended events (once committed); what it raises is logged, never the write's failure."""

    async def _announce(self) -> None:
        """Tell :attr:`on_events` that the log grew."""
        if self.on_events is None:
            return
        try:
            await self.on_events()
        except Exception:
            logger.exception("the provisioning store's on_events hook failed; the events are in the log all the same")

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

    # Workflows and steps

    @abstractmethod
    async def create_workflow(self, workflow: WorkflowRecord, steps: Sequence[StepRecord]) -> None:
        """Insert a workflow and all its steps together."""

    @abstractmethod
    async def get_workflow(self, workflow_id: str, *, tenant: str | None = None) -> WorkflowRecord | None:
        """The workflow with ``workflow_id``; with ``tenant``, only if it belongs to that tenant."""

    @abstractmethod
    async def find_workflows(self, query: WorkflowQuery) -> WorkflowPage:
        """One page of a tenant's workflows, newest first, matching every filter of ``query`` (an index range)."""

    @abstractmethod
    async def latest_for_service(self, tenant: str, service_slug: str) -> WorkflowRecord | None:
        """The tenant's most recent workflow for ``service_slug``."""

    @abstractmethod
    async def count_active(self, service_slug: str) -> int:
        """How many workflows of any tenant are still at work for ``service_slug`` (the dependents check)."""

    @abstractmethod
    async def pending_workflows(self, limit: int = 1000) -> list[WorkflowRecord]:
        """Workflows of any tenant whose current run is recorded but has not started (oldest first)."""

    @abstractmethod
    async def get_steps(self, workflow_id: str) -> list[StepRecord]:
        """Every step of the workflow, in definition order."""

    @abstractmethod
    async def apply_workflow(self, workflow_id: str, change: WorkflowChange) -> Applied:
        """Apply a runner's write (see the module docstring).

        Raises:
            WorkflowNotFound: no such workflow.
            StaleWrite: ``change.run`` is not the workflow's run.
            IllegalTransition: the state table refuses the event.
        """

    @abstractmethod
    async def apply_step(self, workflow_id: str, step: str, change: StepChange) -> Applied:
        """Apply a runner's write to one step, under the same rules (the run is the workflow's)."""

    @abstractmethod
    async def cancel_workflow(self, workflow_id: str, *, tenant: str, at: datetime) -> WorkflowRecord:
        """Cancel the workflow, its unfinished steps and their unused tokens, in one atomic write.

        Raises:
            WorkflowNotFound: no such workflow for ``tenant``.
            IllegalTransition: the workflow cannot be cancelled (finished, or compensating).
        """

    @abstractmethod
    async def retry_workflow(
        self, workflow_id: str, *, tenant: str, at: datetime, dbos_workflow_id: str
    ) -> tuple[WorkflowRecord, list[StepRecord]]:
        """Start the next run: the workflow and every step that did not succeed become pending, atomically.

        Raises:
            WorkflowNotFound: no such workflow for ``tenant``.
            IllegalTransition: the workflow has not ended in a way that can be retried.
        """

    # Executions

    @abstractmethod
    async def start_execution(self, execution: StepExecution) -> int:
        """Record that an attempt of a step started executing (and count it in the step's ``attempts``); its id."""

    @abstractmethod
    async def finish_execution(self, execution_id: int, *, at: datetime, outcome: str, error: str | None) -> None:
        """Record how an execution ended."""

    @abstractmethod
    async def list_executions(self, workflow_id: str, step: str | None = None) -> list[StepExecution]:
        """Every execution of the workflow's steps (or of one step), in the order they started."""

    # Callback tokens

    @abstractmethod
    async def put_token(self, token: CallbackTokenRecord) -> None:
        """Store a new token.

        Earlier tokens of the same step stay valid until one of them is claimed: a receiver that drops a repeated
        request by its idempotency key calls back with the first one.
        """

    @abstractmethod
    async def get_token(self, token_hash: str) -> CallbackTokenRecord | None:
        """The token with this hash, or ``None``."""

    @abstractmethod
    async def claim_token(
        self, token_hash: str, *, at: datetime, payload: dict[str, Any]
    ) -> CallbackTokenRecord | None:
        """Mark the token used at ``at`` and keep ``payload``, if it is unused and unexpired; else ``None``.

        Decided atomically in the store: of two concurrent claims, one wins. The other unused tokens of the same step
        and run are revoked in the same write, so a step is never called back twice.
        """

    @abstractmethod
    async def mark_delivered(self, token_hash: str) -> None:
        """Record that the claimed callback reached its workflow."""

    @abstractmethod
    async def undelivered_tokens(self) -> list[CallbackTokenRecord]:
        """Tokens claimed whose callback was not delivered (delivery was interrupted)."""

    @abstractmethod
    async def revoke_tokens(self, workflow_id: str, *, step: str | None, at: datetime) -> None:
        """Unused tokens of the workflow (or one step of it) stop working: presented later, they count as used."""
