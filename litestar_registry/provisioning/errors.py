"""Errors of the provisioning layer: core ``RegistryError`` subclasses whose ``code`` the HTTP layer maps."""

from __future__ import annotations

from litestar_registry.core.errors import InvalidInput, NotImplementedFeature, RegistryError
from litestar_registry.outbound.policy import OutboundURLRefused

__all__ = (
    "CallbackTokenExpired",
    "CallbackTokenUnknown",
    "CallbackTokenUsed",
    "DefinitionError",
    "OutboundURLRefused",
    "ProvisioningUnavailable",
    "UnknownDefinition",
    "WorkflowNotFound",
)


class DefinitionError(InvalidInput):
    """A workflow definition that cannot run: a cycle, a missing dependency, a duplicate or invalid name.

    Raised when the host registers the definition, so a broken DAG never reaches a tenant.
    """

    code = "invalid_definition"


class UnknownDefinition(InvalidInput):
    """No definition is registered under that name (a 422: the request names something that does not exist)."""

    code = "unknown_definition"


class WorkflowNotFound(RegistryError):
    """No workflow with that id for this tenant (another tenant's workflow answers the same, as if it did not exist)."""

    code = "workflow_not_found"


class CallbackTokenUnknown(RegistryError):
    """No step was ever handed this callback token (404)."""

    code = "callback_token_unknown"


class CallbackTokenUsed(RegistryError):
    """The token was used already, or its step stopped waiting (409): a callback never advances a step twice."""

    code = "callback_token_used"


class CallbackTokenExpired(RegistryError):
    """The token outlived its step's timeout (410)."""

    code = "callback_token_expired"


class ProvisioningUnavailable(NotImplementedFeature):
    """Provisioning is off, or needs the ``workflows`` extra (DBOS, cryptography), which is not installed (501).

    The detail names the extra, ``litestar-registry[workflows]``.
    """

    code = "provisioning_unavailable"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            detail or "provisioning workflows need the 'workflows' extra: pip install 'litestar-registry[workflows]'"
        )
