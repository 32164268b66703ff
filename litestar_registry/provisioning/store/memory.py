"""The in-memory provisioning store: one process, nothing kept across restarts (tests, demos).

Every method runs without awaiting in between, so on one event loop each one is atomic, as a SQL transaction is. The
workflow topics go to the log of a memory registry store in the same step as the change (one sequence of ids with the
registry's own events).
"""

# The methods inherit their docstrings from ProvisioningStore.
# ruff: noqa: D102

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from litestar_registry.core.events import EventDraft
from litestar_registry.provisioning.errors import WorkflowNotFound
from litestar_registry.provisioning.models import (
    StepChange,
    StepExecution,
    StepRecord,
    WorkflowChange,
    WorkflowPage,
    WorkflowQuery,
    WorkflowRecord,
)
from litestar_registry.provisioning.states import ACTIVE_WORKFLOW, StepEvent, WorkflowStatus, step_transition
from litestar_registry.provisioning.store.base import (
    CANCELLABLE_STEPS,
    RETRIED_STEPS,
    Applied,
    EventsHook,
    ProvisioningStore,
    cancel_values,
    retry_values,
    started_events,
    step_change_events,
    step_change_values,
    workflow_change_events,
    workflow_change_values,
)
from litestar_registry.provisioning.tokens import CallbackTokenRecord
from litestar_registry.store.memory import MemoryServiceStore

__all__ = ("MemoryProvisioningStore",)


class MemoryProvisioningStore(ProvisioningStore):
    """Provisioning records in dictionaries, with a sorted id list standing in for the index.

    Args:
        log: The memory registry store whose change log the workflow topics join; a log of its own when not given.
        on_events: Awaited after a write appended events (the registry's ``on_events``).
    """

    def __init__(self, log: MemoryServiceStore | None = None, *, on_events: EventsHook | None = None) -> None:
        self.log = log if log is not None else MemoryServiceStore()
        self.on_events = on_events
        self._workflows: dict[str, WorkflowRecord] = {}
        self._ids: list[str] = []  # sorted ascending; lists walk it backwards (newest first)
        self._steps: dict[str, dict[str, StepRecord]] = {}
        self._executions: list[StepExecution] = []
        self._tokens: dict[str, CallbackTokenRecord] = {}

    async def create_workflow(self, workflow: WorkflowRecord, steps: Sequence[StepRecord]) -> None:
        if workflow.id in self._workflows:
            raise ValueError(f"workflow {workflow.id} exists")
        self._workflows[workflow.id] = workflow
        bisect.insort(self._ids, workflow.id)
        self._steps[workflow.id] = {step.name: step for step in steps}
        await self._log(started_events(workflow, steps, workflow.created_at))

    async def get_workflow(self, workflow_id: str, *, tenant: str | None = None) -> WorkflowRecord | None:
        found = self._workflows.get(workflow_id)
        if found is None or (tenant is not None and found.tenant != tenant):
            return None
        return found

    async def find_workflows(self, query: WorkflowQuery) -> WorkflowPage:
        end = bisect.bisect_left(self._ids, query.after) if query.after is not None else len(self._ids)
        items: list[WorkflowRecord] = []
        for index in range(end - 1, -1, -1):
            record = self._workflows[self._ids[index]]
            if record.tenant != query.tenant:
                continue
            if query.statuses is not None and record.status not in query.statuses:
                continue
            if query.service_slug is not None and record.service_slug != query.service_slug:
                continue
            if query.definition is not None and record.definition != query.definition:
                continue
            if len(items) == query.limit:
                return WorkflowPage(items=items, next_after=items[-1].id)
            items.append(record)
        return WorkflowPage(items=items)

    async def latest_for_service(self, tenant: str, service_slug: str) -> WorkflowRecord | None:
        page = await self.find_workflows(WorkflowQuery(tenant=tenant, service_slug=service_slug, limit=1))
        return page.items[0] if page.items else None

    async def count_active(self, service_slug: str) -> int:
        return sum(
            1
            for record in self._workflows.values()
            if record.service_slug == service_slug and record.status in ACTIVE_WORKFLOW
        )

    async def pending_workflows(self, limit: int = 1000) -> list[WorkflowRecord]:
        found = [self._workflows[wid] for wid in self._ids if self._workflows[wid].status is WorkflowStatus.PENDING]
        return found[:limit]

    async def get_steps(self, workflow_id: str) -> list[StepRecord]:
        return sorted(self._steps.get(workflow_id, {}).values(), key=lambda step: step.position)

    async def apply_workflow(self, workflow_id: str, change: WorkflowChange) -> Applied:
        current = self._workflow(workflow_id)
        values = workflow_change_values(current, change)
        if values is None:
            return Applied.REPLAYED
        self._workflows[workflow_id] = msgspec.structs.replace(current, **values)
        await self._log(workflow_change_events(current, values, change.at))
        return Applied.APPLIED

    async def apply_step(self, workflow_id: str, step: str, change: StepChange) -> Applied:
        workflow = self._workflow(workflow_id)
        current = self._steps[workflow_id].get(step)
        if current is None:
            raise WorkflowNotFound(f"workflow {workflow_id!r} has no step {step!r}")
        values = step_change_values(workflow, current, change)
        if values is None:
            return Applied.REPLAYED
        self._steps[workflow_id][step] = msgspec.structs.replace(current, **values)
        self._workflows[workflow_id] = msgspec.structs.replace(workflow, version=change.version, updated_at=change.at)
        await self._log(step_change_events(workflow, current, change, values))
        return Applied.APPLIED

    async def cancel_workflow(self, workflow_id: str, *, tenant: str, at: datetime) -> WorkflowRecord:
        current = self._workflow(workflow_id, tenant)
        values = cancel_values(current, at)
        updated = msgspec.structs.replace(current, **values)
        steps = self._steps[workflow_id]
        for name, step in steps.items():
            if step.status in CANCELLABLE_STEPS:
                steps[name] = msgspec.structs.replace(
                    step,
                    status=step_transition(step.status, StepEvent.CANCEL),
                    finished_at=at,
                    version=updated.version,
                )
        self._workflows[workflow_id] = updated
        self._revoke(workflow_id, None, at)
        await self._log(workflow_change_events(current, values, at))
        return updated

    async def retry_workflow(
        self, workflow_id: str, *, tenant: str, at: datetime, dbos_workflow_id: str
    ) -> tuple[WorkflowRecord, list[StepRecord]]:
        current = self._workflow(workflow_id, tenant)
        updated = msgspec.structs.replace(current, **retry_values(current, at, dbos_workflow_id))
        steps = self._steps[workflow_id]
        for name, step in steps.items():
            if step.status in RETRIED_STEPS:
                steps[name] = msgspec.structs.replace(
                    step,
                    status=step_transition(step.status, StepEvent.RETRY),
                    started_at=None,
                    finished_at=None,
                    error=None,
                    outputs=None,
                    completed_seq=None,
                    version=updated.version,
                )
        self._workflows[workflow_id] = updated
        after = sorted(steps.values(), key=lambda step: step.position)
        await self._log(started_events(updated, after, at))
        return updated, after

    async def start_execution(self, execution: StepExecution) -> int:
        identifier = len(self._executions) + 1
        self._executions.append(msgspec.structs.replace(execution, id=identifier))
        steps = self._steps.get(execution.workflow_id, {})
        if execution.step in steps:
            step = steps[execution.step]
            steps[execution.step] = msgspec.structs.replace(step, attempts=step.attempts + 1)
        return identifier

    async def finish_execution(self, execution_id: int, *, at: datetime, outcome: str, error: str | None) -> None:
        index = execution_id - 1
        self._executions[index] = msgspec.structs.replace(
            self._executions[index], finished_at=at, outcome=outcome, error=error
        )

    async def list_executions(self, workflow_id: str, step: str | None = None) -> list[StepExecution]:
        return [
            execution
            for execution in self._executions
            if execution.workflow_id == workflow_id and (step is None or execution.step == step)
        ]

    async def put_token(self, token: CallbackTokenRecord) -> None:
        self._tokens[token.token_hash] = token

    async def get_token(self, token_hash: str) -> CallbackTokenRecord | None:
        return self._tokens.get(token_hash)

    async def claim_token(
        self, token_hash: str, *, at: datetime, payload: dict[str, Any]
    ) -> CallbackTokenRecord | None:
        token = self._tokens.get(token_hash)
        if token is None or token.used_at is not None or at >= token.expires_at:
            return None
        for other_hash, other in list(self._tokens.items()):
            if (other.workflow_id, other.step, other.run) == (token.workflow_id, token.step, token.run) and (
                other.used_at is None
            ):
                self._tokens[other_hash] = msgspec.structs.replace(other, used_at=at)
        claimed = msgspec.structs.replace(token, used_at=at, payload=payload)
        self._tokens[token_hash] = claimed
        return claimed

    async def mark_delivered(self, token_hash: str) -> None:
        token = self._tokens.get(token_hash)
        if token is not None:
            self._tokens[token_hash] = msgspec.structs.replace(token, delivered=True)

    async def undelivered_tokens(self) -> list[CallbackTokenRecord]:
        return [
            token
            for token in self._tokens.values()
            if token.used_at is not None and token.payload is not None and not token.delivered
        ]

    async def revoke_tokens(self, workflow_id: str, *, step: str | None, at: datetime) -> None:
        self._revoke(workflow_id, step, at)

    def _revoke(self, workflow_id: str, step: str | None, at: datetime) -> None:
        for token_hash, token in list(self._tokens.items()):
            if token.workflow_id == workflow_id and (step is None or token.step == step) and token.used_at is None:
                self._tokens[token_hash] = msgspec.structs.replace(token, used_at=at)

    async def _log(self, drafts: list[EventDraft]) -> None:
        """Append ``drafts`` to the log (in the caller's step: nothing awaited before), then wake its followers."""
        if drafts:
            self.log.append_events(drafts)
            await self._announce()

    def _workflow(self, workflow_id: str, tenant: str | None = None) -> WorkflowRecord:
        found = self._workflows.get(workflow_id)
        if found is None or (tenant is not None and found.tenant != tenant):
            raise WorkflowNotFound(f"no workflow {workflow_id!r}")
        return found
