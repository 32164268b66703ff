"""Provisioning routes (seed 002): start, list, read, cancel and retry a tenant's workflows, and the callback.

Thin: the tenant comes from the credential (``registry_tenant``), the engine does the rest. Another tenant's
workflow answers 404 on every route, as if it did not exist. Without provisioning (off, or the ``workflows`` extra
missing) every route answers 501, before any credential is looked at.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

from litestar import Controller, Request, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import SecurityRequirement, SecurityScheme
from litestar.params import FromPath, QueryParameter
from litestar.types import Guard

from litestar_registry.api.bodies import held_to_schema
from litestar_registry.api.openapi import add_security_schemes
from litestar_registry.api.pagination import decode_workflow_cursor, encode_workflow_cursor
from litestar_registry.api.problems import problems
from litestar_registry.api.provisioning_schemas import (
    CallbackReceiptView,
    CallbackRequest,
    CallbackStatus,
    StartWorkflowRequest,
    StepView,
    WorkflowDetailView,
    WorkflowView,
)
from litestar_registry.api.registry_dialect import envelope
from litestar_registry.api.routers import registry_router, requires
from litestar_registry.api.schemas import CLOSED_JSON, UUID, Envelope
from litestar_registry.core.auth import Authenticator
from litestar_registry.core.errors import AccessDenied, AuthenticationRequired
from litestar_registry.core.registry import Registry
from litestar_registry.core.validation import SLUG_MAX_LENGTH, SLUG_PATTERN
from litestar_registry.provisioning.errors import WorkflowNotFound
from litestar_registry.provisioning.models import WorkflowQuery
from litestar_registry.provisioning.service import ProvisioningService
from litestar_registry.provisioning.states import WorkflowStatus

if TYPE_CHECKING:
    from litestar.config.app import AppConfig

__all__ = ("TENANT_KEY", "ProvisioningController", "document_provisioning", "provisioning_router")

Service = NamedDependency[ProvisioningService]
Tenant = NamedDependency[str]
Core = NamedDependency[Registry]
AnyRequest = Request[Any, Any, Any]

TENANT_SCHEME = "RegistryTenantKey"
TENANT_KEY: list[SecurityRequirement] = [{TENANT_SCHEME: []}]
"""What the tenant routes take: a credential that carries a tenant."""
StartBody = Annotated[StartWorkflowRequest, CLOSED_JSON]
CallbackBody = Annotated[CallbackRequest, CLOSED_JSON]
_SLUG = re.compile(SLUG_PATTERN)
TENANT_PROBLEMS = (401, 403, 501)
"""What every tenant route can answer besides its own: no credential, a credential without a tenant, no provisioning."""


def _workflow_id(workflow_id: str) -> str:
    """``workflow_id`` if it can name a workflow; a 404 otherwise, as for any id that names none."""
    if UUID.fullmatch(workflow_id) is None:
        raise WorkflowNotFound(f"no workflow {workflow_id[:64]!r}")
    return workflow_id


class ProvisioningController(Controller):
    """A tenant's provisioning workflows, and the callback external services report to."""

    path = "/provisioning"

    @post(
        "/workflows",
        status_code=201,
        responses=problems(*TENANT_PROBLEMS, 404, 413, 422),
        summary="Start a provisioning workflow",
        security=TENANT_KEY,
    )
    async def start(
        self,
        request: AnyRequest,
        data: StartBody,
        registry_core: Core,
        registry_provisioning: Service,
        registry_tenant: Tenant,
    ) -> Envelope[WorkflowView]:
        """Start the definition's workflow for the service, for the caller's tenant.

        An unknown (or not live) service answers 404; an unknown definition or inputs it refuses answer 422.
        """
        await held_to_schema(request, data)
        engine = registry_provisioning.require()
        await registry_core.get_live(data.service_slug)
        record = await engine.start(
            tenant=registry_tenant, service_slug=data.service_slug, definition=data.definition, inputs=data.inputs
        )
        return envelope(request, WorkflowView.of(record))

    @get(
        "/workflows",
        responses=problems(*TENANT_PROBLEMS, 422),
        summary="List provisioning workflows",
        security=TENANT_KEY,
    )
    async def list_workflows(
        self,
        request: AnyRequest,
        registry_core: Core,
        registry_provisioning: Service,
        registry_tenant: Tenant,
        status: Annotated[list[WorkflowStatus] | None, QueryParameter(description="Any of these statuses")] = None,
        service_slug: Annotated[
            str | None, QueryParameter(pattern=SLUG_PATTERN, max_length=SLUG_MAX_LENGTH, description="One service")
        ] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
        limit: Annotated[int | None, QueryParameter(ge=1, le=500)] = None,
    ) -> Envelope[list[WorkflowView]]:
        """The caller's tenant's workflows matching every filter given, newest first, a page at a time."""
        engine = registry_provisioning.require()
        size = min(limit or registry_core.policy.default_page_size, registry_core.policy.max_page_size)
        query = WorkflowQuery(
            tenant=registry_tenant,
            statuses=frozenset(status) if status else None,
            service_slug=service_slug,
            after=decode_workflow_cursor(cursor),
            limit=size,
        )
        page = await engine.list_workflows(query)
        views = [WorkflowView.of(record) for record in page.items]
        return envelope(
            request, views, count=len(views), next_cursor=encode_workflow_cursor(page.next_after), limit=size
        )

    @get(
        "/workflows/{workflow_id:str}",
        responses=problems(*TENANT_PROBLEMS, 404),
        summary="Get a provisioning workflow with its steps",
        security=TENANT_KEY,
    )
    async def get_workflow(
        self, request: AnyRequest, workflow_id: FromPath[str], registry_provisioning: Service, registry_tenant: Tenant
    ) -> Envelope[WorkflowDetailView]:
        """The workflow with every step (status, attempts, times, error, outputs); credentials are redacted."""
        engine = registry_provisioning.require()
        detail = await engine.get(tenant=registry_tenant, workflow_id=_workflow_id(workflow_id))
        view = WorkflowDetailView(
            **WorkflowView.fields_of(detail.workflow), steps=[StepView.of(step) for step in detail.steps]
        )
        return envelope(request, view)

    @get(
        "/status/{service_slug:str}",
        responses=problems(*TENANT_PROBLEMS, 404),
        summary="Provisioning status of a service",
        security=TENANT_KEY,
    )
    async def status(
        self, request: AnyRequest, service_slug: FromPath[str], registry_provisioning: Service, registry_tenant: Tenant
    ) -> Envelope[WorkflowView]:
        """The most recent workflow of the service for the caller's tenant; 404 when it has none."""
        engine = registry_provisioning.require()
        found = None
        if len(service_slug) <= SLUG_MAX_LENGTH and _SLUG.fullmatch(service_slug):
            found = await engine.status(tenant=registry_tenant, service_slug=service_slug)
        if found is None:
            raise WorkflowNotFound(f"no provisioning workflow for service {service_slug[:64]!r}")
        return envelope(request, WorkflowView.of(found))

    @post(
        "/workflows/{workflow_id:str}/cancel",
        status_code=200,
        responses=problems(*TENANT_PROBLEMS, 404, 409),
        summary="Cancel a provisioning workflow",
        security=TENANT_KEY,
    )
    async def cancel(
        self, request: AnyRequest, workflow_id: FromPath[str], registry_provisioning: Service, registry_tenant: Tenant
    ) -> Envelope[WorkflowView]:
        """Stop the workflow: its waits end, its callback tokens stop working. 409 once it ended or compensates."""
        engine = registry_provisioning.require()
        record = await engine.cancel(tenant=registry_tenant, workflow_id=_workflow_id(workflow_id))
        return envelope(request, WorkflowView.of(record))

    @post(
        "/workflows/{workflow_id:str}/retry",
        status_code=200,
        responses=problems(*TENANT_PROBLEMS, 404, 409),
        summary="Retry a provisioning workflow",
        security=TENANT_KEY,
    )
    async def retry(
        self, request: AnyRequest, workflow_id: FromPath[str], registry_provisioning: Service, registry_tenant: Tenant
    ) -> Envelope[WorkflowView]:
        """Run a failed, compensated or cancelled workflow again from the steps that did not succeed (409 otherwise)."""
        engine = registry_provisioning.require()
        record = await engine.retry(tenant=registry_tenant, workflow_id=_workflow_id(workflow_id))
        return envelope(request, WorkflowView.of(record))

    @post(
        "/callback",
        status_code=200,
        responses=problems(404, 409, 410, 413, 422, 501),
        summary="Provisioning callback",
        security=[{}],
    )
    async def callback(
        self, request: AnyRequest, data: CallbackBody, registry_provisioning: Service
    ) -> Envelope[CallbackReceiptView]:
        """An external service reports how the work that a callback step handed it ended.

        No Authorization: the token is the credential, single-use: unknown 404, used before 409, expired 410.

        ``endpoint`` and ``credentials`` become the step's outputs; credentials are encrypted and never read back.
        """
        await held_to_schema(request, data)
        engine = registry_provisioning.require()
        receipt = await engine.callback(
            data.callback_token,
            status=data.status.value,
            endpoint=data.endpoint,
            credentials=data.credentials,
            message=data.message,
            metadata=data.metadata,
        )
        view = CallbackReceiptView(
            workflow_id=receipt.workflow_id, step=receipt.step, status=CallbackStatus(receipt.status)
        )
        return envelope(request, view)


def document_provisioning(app_config: AppConfig) -> None:
    """Add the tenant key's security scheme to the app's document (only when the provisioning routes are in it)."""
    scheme = SecurityScheme(
        type="http",
        scheme="bearer",
        description="A credential that carries a tenant (a tenant key, or the host's own token): "
        "`Authorization: Bearer <key>`.",
    )
    add_security_schemes(app_config, {TENANT_SCHEME: scheme})


def provisioning_router(
    *,
    path: str,
    registry: Registry,
    service: ProvisioningService,
    authenticator: Authenticator,
    guards: Sequence[Guard],
    tags: list[str],
    include_in_schema: bool,
    max_body_bytes: int,
) -> Router:
    """The provisioning Router at ``path`` (the registry's own), with its dependencies and problem+json errors."""

    def provide_core() -> Registry:
        return registry

    def provide_service() -> ProvisioningService:
        return service

    async def provide_tenant(request: AnyRequest) -> str:
        principal = await authenticator.authenticate(request.headers)
        if principal is None:
            raise AuthenticationRequired("send a tenant's key as 'Authorization: Bearer <key>'")
        tenant = principal.tenant
        if not tenant or "\x00" in tenant:
            raise AccessDenied("provisioning needs a tenant's credential; this one has no tenant")
        return tenant

    return registry_router(
        path=path,
        route_handlers=[ProvisioningController],
        dependencies={
            "registry_core": Provide(provide_core, sync_to_thread=False),
            "registry_provisioning": Provide(provide_service, sync_to_thread=False),
            "registry_tenant": Provide(provide_tenant),
        },
        guards=[*guards, requires(service)],  # 501 before the credential or the body is looked at, without provisioning
        tags=tags,
        include_in_schema=include_in_schema,
        max_body_bytes=max_body_bytes,
    )
