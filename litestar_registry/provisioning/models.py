"""The read model of provisioning: workflows, their steps and every execution of a step, as the stores keep them.

DBOS keeps the durable execution state; these records are the indexed, tenant-scoped projection that reads (list,
detail, status) are served from. Outputs hold credentials sealed (see :mod:`.crypto`); reads redact them.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from typing import Any

import msgspec

from litestar_registry.provisioning.sealed import redact
from litestar_registry.provisioning.states import StepEvent, StepStatus, WorkflowEvent, WorkflowStatus

__all__ = (
    "StepChange",
    "StepExecution",
    "StepRecord",
    "WorkflowChange",
    "WorkflowPage",
    "WorkflowQuery",
    "WorkflowRecord",
    "new_workflow_id",
)


class WorkflowRecord(msgspec.Struct, kw_only=True, frozen=True):
    """One provisioning workflow of one tenant.

    ``run`` counts retries (0 for the first run); each run is its own DBOS workflow, ``dbos_workflow_id``.
    ``version`` grows with every write; a runner's writes carry the version they move to, so a write replayed after a
    crash (at or below the stored version) changes nothing.
    """

    id: str
    tenant: str
    service_slug: str
    definition: str
    status: WorkflowStatus
    inputs: dict[str, Any]
    run: int
    dbos_workflow_id: str
    version: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None


class StepRecord(msgspec.Struct, kw_only=True, frozen=True):
    """One step of a workflow: its status, how often it ran, and what it produced."""

    workflow_id: str
    name: str
    kind: str
    position: int
    depends_on: tuple[str, ...]
    status: StepStatus
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    outputs: dict[str, Any] | None = None
    completed_seq: int | None = None
    """Order in which the step succeeded within its workflow: compensations run in reverse of it."""
    version: int = 0

    def redacted(self) -> StepRecord:
        """This step with every sealed credential in its outputs replaced by ``[redacted]``."""
        return msgspec.structs.replace(self, outputs=redact(self.outputs)) if self.outputs else self


class StepExecution(msgspec.Struct, kw_only=True, frozen=True):
    """One execution of one attempt of a step (an attempt re-run after a crash is a second execution)."""

    workflow_id: str
    step: str
    run: int
    attempt: int
    executor_id: str
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str | None = None
    """``succeeded``, ``failed``, or ``None`` while it runs (or when its process died)."""
    error: str | None = None
    id: int | None = None


class WorkflowChange(msgspec.Struct, kw_only=True, frozen=True):
    """A runner's write to a workflow: a transition, the version it moves to, and the fields it sets."""

    event: WorkflowEvent
    run: int
    version: int
    at: datetime
    error: str | None = None


class StepChange(msgspec.Struct, kw_only=True, frozen=True):
    """A runner's write to a step: a transition, the version it moves to, and the fields it sets.

    ``outputs`` and ``error`` are written when given; ``completed_seq`` with a ``succeed``.
    """

    event: StepEvent
    run: int
    version: int
    at: datetime
    error: str | None = None
    outputs: dict[str, Any] | None = None
    completed_seq: int | None = None
    expires_at: datetime | None = None
    """With a ``wait``: when the step's callback token expires (told in ``workflow.step_waiting``; not stored)."""


class WorkflowQuery(msgspec.Struct, kw_only=True, frozen=True):
    """One tenant's workflows, newest first; every filter given must match."""

    tenant: str
    statuses: frozenset[WorkflowStatus] | None = None
    service_slug: str | None = None
    definition: str | None = None
    after: str | None = None
    """Return workflows strictly older than this id (the cursor)."""
    limit: int = 50


class WorkflowPage(msgspec.Struct, kw_only=True, frozen=True):
    """A page of workflows, newest first; ``next_after`` is the cursor for the next page, ``None`` at the end."""

    items: list[WorkflowRecord]
    next_after: str | None = None


def new_workflow_id(at: datetime) -> str:
    """A UUIDv7 (RFC 9562) for ``at``: ids sort by creation time, so newest-first is an index scan on the id."""
    millis = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis << 80) | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))
