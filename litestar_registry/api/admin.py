"""Operator routes: approve or reject pending services, force a deregistration."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, post
from litestar.di import NamedDependency

from litestar_registry.api.openapi import ADMIN_KEY
from litestar_registry.api.problems import problems
from litestar_registry.api.registry_dialect import envelope, registration_response
from litestar_registry.api.schemas import Envelope, RegistrationResponse, SlugPath
from litestar_registry.core.auth import Principal
from litestar_registry.core.registry import Registry

__all__ = ("AdminController",)

Core = NamedDependency[Registry]
Caller = NamedDependency[Principal]
ADMIN_PROBLEMS = problems(401, 403, 404, 409)


class AdminController(Controller):
    """Admin-only: every route answers 403 to service accounts."""

    path = "/admin/registry/services"

    @post(
        "/{slug:str}/approve",
        status_code=200,
        responses=ADMIN_PROBLEMS,
        security=ADMIN_KEY,
        summary="Approve a pending service",
    )
    async def approve(
        self, request: Request[Any, Any, Any], slug: SlugPath, registry_core: Core, registry_principal: Caller
    ) -> Envelope[RegistrationResponse]:
        """A pending service becomes active and discoverable; its first contact window starts now."""
        record = await registry_core.approve(slug, registry_principal)
        return envelope(request, registration_response(record, changed=True))

    @post(
        "/{slug:str}/reject",
        status_code=200,
        responses=ADMIN_PROBLEMS,
        security=ADMIN_KEY,
        summary="Reject a pending service",
    )
    async def reject(
        self, request: Request[Any, Any, Any], slug: SlugPath, registry_core: Core, registry_principal: Caller
    ) -> Envelope[RegistrationResponse]:
        """A pending service is rejected: it stays undiscoverable and takes no heartbeats."""
        record = await registry_core.reject(slug, registry_principal)
        return envelope(request, registration_response(record, changed=True))

    @delete(
        "/{slug:str}",
        status_code=204,
        responses=ADMIN_PROBLEMS,
        security=ADMIN_KEY,
        summary="Force-deregister a service",
    )
    async def force_deregister(self, slug: SlugPath, registry_core: Core, registry_principal: Caller) -> None:
        """Deregister whatever depends on the service: for services that are gone for good."""
        await registry_core.deregister(slug, registry_principal, reason="forced by an admin", force=True)
