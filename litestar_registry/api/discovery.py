"""Entrypoint discovery: how to reach the active services."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency

from litestar_registry.api.openapi import ANY_KEY, READ
from litestar_registry.api.pagination import decode_cursor, encode_cursor
from litestar_registry.api.problems import problems
from litestar_registry.api.registry_dialect import envelope
from litestar_registry.api.schemas import (
    CursorQuery,
    EntrypointView,
    Envelope,
    LabelQuery,
    ServiceEntrypoints,
    SlugPath,
)
from litestar_registry.core.auth import Principal
from litestar_registry.core.errors import ServiceNotFound
from litestar_registry.core.models import Entrypoint, ServiceRecord, ServiceStatus
from litestar_registry.core.registry import Registry

__all__ = ("EntrypointController",)


def _entrypoints(record: ServiceRecord, endpoints: list[Entrypoint] | tuple[Entrypoint, ...]) -> ServiceEntrypoints:
    return ServiceEntrypoints(
        slug=record.slug,
        name=record.name,
        version=record.version,
        capabilities=list(record.capabilities),
        entrypoints=[msgspec.convert(msgspec.structs.asdict(e), EntrypointView) for e in endpoints],
    )


class EntrypointController(Controller):
    """Entrypoints of active services; pending, degraded and expired services are not discoverable."""

    path = "/entrypoints"

    @get("/", responses=problems(401, 422), opt=READ, security=ANY_KEY, summary="Discover entrypoints")
    async def discover(
        self,
        request: Request[Any, Any, Any],
        registry_core: NamedDependency[Registry],
        registry_reader: NamedDependency[Principal | None],
        registry_page_size: NamedDependency[int],
        capability: LabelQuery = None,
        protocol: LabelQuery = None,
        cursor: CursorQuery = None,
    ) -> Envelope[list[ServiceEntrypoints]]:
        """Active services offering ``capability``, with their entrypoints speaking ``protocol``."""
        size = registry_page_size
        found, after = await registry_core.entrypoints(
            capability=capability, protocol=protocol, after=decode_cursor(cursor), limit=size
        )
        data = [_entrypoints(record, endpoints) for record, endpoints in found]
        return envelope(request, data, count=len(data), next_cursor=encode_cursor(after), limit=size)

    @get("/{slug:str}", responses=problems(401, 404), opt=READ, security=ANY_KEY, summary="Entrypoints of one service")
    async def service_entrypoints(
        self,
        request: Request[Any, Any, Any],
        slug: SlugPath,
        registry_core: NamedDependency[Registry],
        registry_reader: NamedDependency[Principal | None],
    ) -> Envelope[ServiceEntrypoints]:
        """The entrypoints of one active service."""
        record = await registry_core.get(slug)
        if record.status is not ServiceStatus.ACTIVE:
            raise ServiceNotFound(f"service '{slug}' is not active")
        return envelope(request, _entrypoints(record, record.endpoints))
