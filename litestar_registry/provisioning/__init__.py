"""Provisioning workflows: DAGs of steps per tenant and service, run durably by DBOS Transact.

This package's top level needs neither DBOS nor cryptography (the ``workflows`` extra): definitions, state tables,
tokens, the URL policy, the read-model records and stores import without them. The engine
(:mod:`litestar_registry.provisioning.engine`), the DBOS runtime (:mod:`.runtime`) and the credential cipher
(:mod:`.crypto`) need the extra.
"""

from __future__ import annotations

from litestar_registry.outbound.policy import OutboundURLPolicy
from litestar_registry.provisioning.definitions import (
    Call,
    Callback,
    CompensationContext,
    DefinitionRegistry,
    HttpCall,
    PermanentStepError,
    RetryPolicy,
    Step,
    StepContext,
    WorkflowDefinition,
)
from litestar_registry.provisioning.errors import (
    CallbackTokenExpired,
    CallbackTokenUnknown,
    CallbackTokenUsed,
    DefinitionError,
    OutboundURLRefused,
    ProvisioningUnavailable,
    UnknownDefinition,
    WorkflowNotFound,
)
from litestar_registry.provisioning.models import (
    StepExecution,
    StepRecord,
    WorkflowPage,
    WorkflowQuery,
    WorkflowRecord,
)
from litestar_registry.provisioning.states import StepStatus, WorkflowStatus

__all__ = (
    "Call",
    "Callback",
    "CallbackTokenExpired",
    "CallbackTokenUnknown",
    "CallbackTokenUsed",
    "CompensationContext",
    "DefinitionError",
    "DefinitionRegistry",
    "HttpCall",
    "OutboundURLPolicy",
    "OutboundURLRefused",
    "PermanentStepError",
    "ProvisioningUnavailable",
    "RetryPolicy",
    "Step",
    "StepContext",
    "StepExecution",
    "StepRecord",
    "StepStatus",
    "UnknownDefinition",
    "WorkflowDefinition",
    "WorkflowNotFound",
    "WorkflowPage",
    "WorkflowQuery",
    "WorkflowRecord",
    "WorkflowStatus",
    "workflows_available",
)


def workflows_available() -> bool:
    """Whether the ``workflows`` extra (DBOS and cryptography) is installed; without it the routes answer 501."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("dbos", "cryptography"))
