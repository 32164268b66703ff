"""The registry dialect (seed 000): register, re-register, deregister, heartbeat, and the service reads."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from litestar_registry.api.bodies import held_to_schema
from litestar_registry.api.feed import INDEX_HEADER, FeedSettings, IndexQuery, WaitQuery, index_header, long_poll
from litestar_registry.api.openapi import ANY_KEY, READ
from litestar_registry.api.pagination import (
    decode_cursor,
    decode_position_cursor,
    encode_cursor,
    encode_position_cursor,
)
from litestar_registry.api.problems import problems, request_id
from litestar_registry.api.schemas import (
    CursorQuery,
    DeregistrationRequest,
    Envelope,
    HeartbeatRequest,
    HeartbeatResponse,
    LabelQuery,
    Meta,
    RegistrationRequest,
    RegistrationResponse,
    SearchQuery,
    ServiceView,
    SlugPath,
    VersionView,
)
from litestar_registry.core.auth import Principal
from litestar_registry.core.errors import ServiceNotFound
from litestar_registry.core.feed import FeedHub
from litestar_registry.core.models import (
    HealthReport,
    Heartbeat,
    Registration,
    ServiceQuery,
    ServiceRecord,
    ServiceStatus,
)
from litestar_registry.core.registry import Registry
from litestar_registry.core.states import LIVE
from litestar_registry.core.validation import check_storable

__all__ = ("RegistryController", "envelope", "registration_response")

Core = NamedDependency[Registry]
Caller = NamedDependency[Principal]
Reader = NamedDependency[Principal | None]
AnyRequest = Request[Any, Any, Any]

DEFAULT_STATUSES = frozenset({*LIVE, ServiceStatus.PENDING, ServiceStatus.REJECTED})
"""What a list shows without a status filter: everything but the ended (expired, deregistered)."""
WRITE_PROBLEMS = problems(401, 403, 409, 413, 422)


def envelope(request: AnyRequest, data: Any, **meta: Any) -> Envelope[Any]:
    """Wrap ``data`` in the ``{data, meta}`` envelope."""
    return Envelope(data=data, meta=Meta(request_id=request_id(request), **meta))


def registration_response(record: ServiceRecord, *, changed: bool) -> RegistrationResponse:
    """The registration answer: the service, whether it is approved, whether the request changed it."""
    view = msgspec.structs.asdict(ServiceView.of(record))
    approved = record.status not in (ServiceStatus.PENDING, ServiceStatus.REJECTED)
    return RegistrationResponse(**view, approved=approved, changed=changed)


def _registration(data: RegistrationRequest) -> Registration:
    return msgspec.convert(msgspec.to_builtins(data), Registration)


class RegistryController(Controller):
    """Service self-registration and heartbeats, and the registry's reads.

    The plugin mounts a subclass bound to its registry (:func:`~litestar_registry.api.dependencies.bind`): handlers
    use ``self.registry`` and take only their caller as a dependency, which Litestar resolves inline.
    """

    path = "/registry"
    registry: ClassVar[Registry]

    @post("/register", status_code=201, responses=WRITE_PROBLEMS, security=ANY_KEY, summary="Register a service")
    async def register(
        self, request: AnyRequest, data: JSONBody[RegistrationRequest], registry_principal: Caller
    ) -> Envelope[RegistrationResponse]:
        """Register a new service. Known accounts and slugs are approved at once; others wait for an admin."""
        await held_to_schema(request, data)
        record = await self.registry.register(_registration(data), registry_principal)
        return envelope(request, registration_response(record, changed=True))

    @put("/register", responses={**WRITE_PROBLEMS, **problems(404)}, security=ANY_KEY, summary="Re-register a service")
    async def reregister(
        self, request: AnyRequest, data: JSONBody[RegistrationRequest], registry_principal: Caller
    ) -> Envelope[RegistrationResponse]:
        """Update a registered service. Idempotent; a version change is added to its version history."""
        await held_to_schema(request, data)
        record, changed = await self.registry.update(_registration(data), registry_principal)
        return envelope(request, registration_response(record, changed=changed))

    @delete(
        "/register",
        status_code=204,
        responses={**WRITE_PROBLEMS, **problems(404)},
        security=ANY_KEY,
        summary="Deregister",
    )
    async def deregister(
        self, request: AnyRequest, data: JSONBody[DeregistrationRequest], registry_principal: Caller
    ) -> None:
        """Deregister a service; refused (409) while it has active dependents."""
        await held_to_schema(request, data)
        await self.registry.deregister(data.slug, registry_principal, reason=data.reason)

    @post(
        "/heartbeat",
        status_code=200,
        responses={**WRITE_PROBLEMS, **problems(404)},
        security=ANY_KEY,
        summary="Heartbeat",
    )
    async def heartbeat(
        self, request: AnyRequest, data: JSONBody[HeartbeatRequest], registry_principal: Caller
    ) -> Envelope[HeartbeatResponse]:
        """Refresh the service's deadline, reset its failure count and restore it from degraded.

        An unknown or expired slug answers 404, so that its client registers again.
        """
        check_storable(data.timestamp, "timestamp")  # named as sent: its offset may take it out of range in UTC
        health = HealthReport(
            status=data.status.value,
            uptime_seconds=data.uptime_seconds,
            instance_id=data.instance_id,
            message=data.message,
            checks={name: check.value for name, check in data.checks.items()},
            metrics=data.metrics,
            reported_at=data.timestamp,
        )
        check_storable(health, "")  # before the strict check: this one names a bad metric by its key, that one cannot
        await held_to_schema(request, data)
        beat = Heartbeat(slug=data.slug, health=health, version=data.version)
        record, version_changed = await self.registry.heartbeat(beat, registry_principal)
        answer = HeartbeatResponse(
            slug=record.slug,
            status=record.status,
            acknowledged_at=record.last_seen_at,
            next_heartbeat_due_at=record.deadline_at,
            failure_count=record.failure_count,
            version_changed=version_changed,
        )
        return envelope(request, answer)

    @get(
        "/services",
        responses=problems(401, 422),
        opt=READ,
        security=ANY_KEY,
        summary="List services",
        response_headers=[index_header()],
    )
    async def list_services(
        self,
        request: AnyRequest,
        registry_core: Core,
        registry_reader: Reader,
        registry_page_size: NamedDependency[int],
        registry_feed: NamedDependency[FeedHub],
        registry_feed_settings: NamedDependency[FeedSettings],
        status: Annotated[
            list[ServiceStatus] | None, QueryParameter(max_items=len(ServiceStatus), description="Any of these")
        ] = None,
        tag: LabelQuery = None,
        capability: LabelQuery = None,
        q: SearchQuery = None,
        cursor: CursorQuery = None,
        index: IndexQuery = None,
        wait: WaitQuery = None,
    ) -> Response[Envelope[list[ServiceView]]]:
        """Services matching every filter given, in slug order, a page at a time (``meta.next_cursor``).

        `meta.index` (and the `X-Registry-Index` header) is the change log's last id when the list was read. Pass it
        back as `index`, with `wait`, to long-poll: the answer comes once anything in the registry changed.
        """
        current = await long_poll(request, registry_feed, registry_feed_settings, index, wait)
        size = registry_page_size
        query = ServiceQuery(
            statuses=frozenset(status) if status else DEFAULT_STATUSES,
            tag=tag,
            capability=capability,
            text=q,
            after=decode_cursor(cursor),
            limit=size,
        )
        page = await registry_core.find(query)
        views = [ServiceView.of(r) for r in page.items if Registry.visible(r, registry_reader)]
        body = envelope(
            request, views, count=len(views), next_cursor=encode_cursor(page.next_after), limit=size, index=current
        )
        return Response(body, headers={INDEX_HEADER: str(current)})

    @get("/services/{slug:str}", responses=problems(401, 404), opt=READ, security=ANY_KEY, summary="Get a service")
    async def get_service(self, request: AnyRequest, slug: SlugPath, registry_reader: Reader) -> Envelope[ServiceView]:
        """One service as it stands now, whatever its status."""
        return envelope(request, ServiceView.of(await _visible(self.registry, slug, registry_reader)))

    @get(
        "/services/{slug:str}/versions",
        responses=problems(401, 404, 422),
        opt=READ,
        security=ANY_KEY,
        summary="Version history",
    )
    async def versions(
        self,
        request: AnyRequest,
        slug: SlugPath,
        registry_core: Core,
        registry_reader: Reader,
        registry_page_size: NamedDependency[int],
        cursor: CursorQuery = None,
    ) -> Envelope[list[VersionView]]:
        """The versions the service has registered, oldest first, a page at a time (``meta.next_cursor``).

        Only the newest entries are kept (``history_limit`` per service).
        """
        await _visible(registry_core, slug, registry_reader)
        size = registry_page_size
        page = await registry_core.versions(slug, after=decode_position_cursor(cursor), limit=size)
        entries = [VersionView.of(entry) for entry in page.items]
        return envelope(
            request, entries, count=len(entries), next_cursor=encode_position_cursor(page.next_after), limit=size
        )


async def _visible(registry: Registry, slug: str, principal: Principal | None) -> ServiceRecord:
    record = await registry.get(slug)
    if not Registry.visible(record, principal):
        raise ServiceNotFound(f"service '{slug}' is not registered")
    return record
