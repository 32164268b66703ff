"""Wire shapes of the provisioning routes (seed 002): starting workflows, reading them, and the callback.

Reads never carry a credential: step outputs come from the read model with every sealed value shown as
``[redacted]``, and the callback's answer names only the step it reached.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any

import msgspec

from litestar_registry.api.schemas import Metadata, Slug, Text, Url
from litestar_registry.core.validation import MAX_ITEMS
from litestar_registry.provisioning.definitions import NAME_PATTERN
from litestar_registry.provisioning.models import StepRecord, WorkflowRecord
from litestar_registry.provisioning.states import StepStatus, WorkflowStatus

__all__ = (
    "CallbackReceiptView",
    "CallbackRequest",
    "CallbackStatus",
    "StartWorkflowRequest",
    "StepView",
    "WorkflowDetailView",
    "WorkflowView",
)

DefinitionName = Annotated[
    str,
    msgspec.Meta(pattern=NAME_PATTERN, min_length=1, max_length=63, examples=["provision"]),
]


class StartWorkflowRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Start a workflow for the caller's tenant; the tenant comes from the credential, never from the body."""

    service_slug: Slug
    definition: DefinitionName
    inputs: Annotated[dict[str, Any], msgspec.Meta(max_length=MAX_ITEMS)] = msgspec.field(default_factory=dict)
    """Checked against the definition's inputs type, if it has one (422 when they do not match)."""


class CallbackStatus(enum.StrEnum):
    """How the external service's work ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"


class CallbackRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An external service reporting on the step that handed it ``callback_token`` (seed 002)."""

    callback_token: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
    status: CallbackStatus
    endpoint: Url | None = None
    """Where the provisioned resource answers; becomes the step's ``endpoint`` output."""
    credentials: Annotated[dict[str, Any], msgspec.Meta(max_length=MAX_ITEMS)] | None = None
    """Secrets for whoever uses the resource; encrypted before anything is stored, never returned by a read."""
    message: Text | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)


class WorkflowView(msgspec.Struct, kw_only=True):
    """A workflow of the caller's tenant."""

    id: str
    service_slug: str
    definition: str
    status: WorkflowStatus
    inputs: dict[str, Any]
    run: int
    """0 for the first run, one more for each retry."""
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None

    @classmethod
    def fields_of(cls, record: WorkflowRecord) -> dict[str, Any]:
        """The view's fields for ``record``."""
        return {
            "id": record.id,
            "service_slug": record.service_slug,
            "definition": record.definition,
            "status": record.status,
            "inputs": record.inputs,
            "run": record.run,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
            "started_at": record.started_at,
            "finished_at": record.finished_at,
            "error": record.error,
        }

    @classmethod
    def of(cls, record: WorkflowRecord) -> WorkflowView:
        """Render a workflow record."""
        return cls(**cls.fields_of(record))


class StepView(msgspec.Struct, kw_only=True):
    """One step of a workflow, with its outputs (credentials shown as ``[redacted]``)."""

    name: str
    kind: str
    """``call``, ``http`` or ``callback``."""
    status: StepStatus
    depends_on: list[str]
    attempts: int
    """Executions of the step so far (an attempt re-run after a crash counts again)."""
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    outputs: dict[str, Any] | None

    @classmethod
    def of(cls, record: StepRecord) -> StepView:
        """Render a step record, its credentials redacted."""
        step = record.redacted()
        return cls(
            name=step.name,
            kind=step.kind,
            status=step.status,
            depends_on=list(step.depends_on),
            attempts=step.attempts,
            started_at=step.started_at,
            finished_at=step.finished_at,
            error=step.error,
            outputs=step.outputs,
        )


class WorkflowDetailView(WorkflowView, kw_only=True):
    """A workflow with every step."""

    steps: list[StepView]


class CallbackReceiptView(msgspec.Struct, kw_only=True):
    """What an accepted callback reached."""

    workflow_id: str
    step: str
    status: CallbackStatus
