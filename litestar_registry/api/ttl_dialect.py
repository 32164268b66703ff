"""The TTL dialect (seed 004): ``$register``, ``$ping``, list, get, delete, in the plain shapes its clients expect.

Its errors are ``{"detail": ...}`` as those clients know them (a 404 on ping is what makes a client re-register),
not problem+json: this Router has its own exception handlers, separate from the registry dialect's.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, Router, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody
from litestar.types import ExceptionHandlersMap, Guard

from litestar_registry.api.problems import invalid_fields
from litestar_registry.core import errors
from litestar_registry.core.auth import Principal, Role
from litestar_registry.core.models import Registration, ServiceRecord
from litestar_registry.core.registry import Registry
from litestar_registry.core.validation import SLUG_PATTERN

__all__ = ("TtlDialect", "ttl_router")

logger = logging.getLogger("litestar_registry")

EXTENSION = "v2"
"""Key under ``ServiceRecord.extensions`` where the TTL dialect keeps ``info`` as it was sent."""


class ModelMetadata(msgspec.Struct, kw_only=True):
    """Who made the model (seed 004); further fields are kept as sent."""

    author: str | None = None
    organization: str | None = None
    contact_email: str | None = None


class ServiceInfo(msgspec.Struct, kw_only=True):
    """The service's self-description (``MLServiceInfo``); unknown fields are kept as sent, not refused."""

    id: Annotated[str, msgspec.Meta(pattern=SLUG_PATTERN, max_length=63, examples=["my-model"])]
    display_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    model_metadata: ModelMetadata
    version: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "1.0.0"
    description: Annotated[str, msgspec.Meta(max_length=2_000)] | None = None
    period_type: Annotated[str, msgspec.Meta(pattern="^(weekly|monthly|any)$")] | None = None
    min_prediction_periods: Annotated[int, msgspec.Meta(ge=0)] = 0
    max_prediction_periods: Annotated[int, msgspec.Meta(ge=0)] = 100


class RegisterRequest(msgspec.Struct, kw_only=True):
    """``POST /$register``: where the service answers and what it is. Unknown top-level fields are ignored."""

    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2_048, examples=["http://my-model:8080"])]
    info: ServiceInfo
    ttl_seconds: Annotated[float, msgspec.Meta(gt=0)] | None = None


class RegisterResponse(msgspec.Struct, kw_only=True):
    """The answer to a registration (seed 004)."""

    id: str
    status: str
    service_url: str
    message: str
    ttl_seconds: float
    ping_url: str


class PingResponse(msgspec.Struct, kw_only=True):
    """The answer to a ping: clients treat a 2xx without this body as a failed ping."""

    id: str
    status: str
    last_ping_at: str
    expires_at: str


class ServiceEntry(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A service as the TTL dialect lists it; fields without a value are left out."""

    id: str
    info: dict[str, Any]
    url: str | None = None
    registered_at: str | None = None
    last_updated: str | None = None
    last_ping_at: str | None = None
    expires_at: str | None = None


class ServiceList(msgspec.Struct, kw_only=True):
    """``GET /``: every live service."""

    count: int
    services: list[ServiceEntry]


class Detail(msgspec.Struct, kw_only=True):
    """The TTL dialect's error body."""

    detail: Any


def _iso(value: datetime) -> str:
    """ISO 8601 with an explicit ``+00:00`` offset, as the dialect's clients parse it."""
    return value.isoformat()


def _entry(record: ServiceRecord) -> ServiceEntry:
    info = record.extensions.get(EXTENSION, {}).get("info") or {
        "id": record.slug,
        "display_name": record.name,
        "version": record.version,
        "description": record.description,
        "model_metadata": {},
    }
    return ServiceEntry(
        id=record.slug,
        info={key: value for key, value in info.items() if value is not None},
        url=record.base_url,
        registered_at=_iso(record.registered_at),
        last_updated=_iso(record.updated_at),
        last_ping_at=_iso(record.last_seen_at),
        expires_at=_iso(record.expires_at),
    )


def _detail(status: int, detail: Any) -> Response[Detail]:
    return Response(Detail(detail=detail), status_code=status)


def _not_found(request: Request[Any, Any, Any], exc: errors.ServiceNotFound) -> Response[Detail]:
    return _detail(404, f"Service {exc.extra.get('slug', request.path_params.get('service_id', ''))} not found")


def _registry_error(request: Request[Any, Any, Any], exc: errors.RegistryError) -> Response[Detail]:
    if isinstance(exc, errors.InvalidInput):
        field = str(exc.extra.get("field", ""))
        loc = ["body", "info", "id"] if field == "slug" else ["body", *field.split(".")]
        return _detail(422, [{"loc": loc, "msg": exc.detail, "type": "value_error"}])
    status = {
        errors.AuthenticationRequired: 401,
        errors.AccessDenied: 403,
        errors.NotImplementedFeature: 501,
    }.get(type(exc), 409)
    return _detail(status, exc.detail)


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Detail]:
    detail = [
        {"loc": [source, *error.field.split(".")], "msg": error.message, "type": "value_error"}
        for source, error in invalid_fields(exc)
    ]
    return _detail(422, detail or exc.detail)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Detail]:
    return _detail(exc.status_code, exc.detail)


HANDLERS: ExceptionHandlersMap = {
    errors.ServiceNotFound: _not_found,
    errors.RegistryError: _registry_error,
    ValidationException: _validation_error,
    HTTPException: _http_error,
}
DETAIL = {
    status: ResponseSpec(data_container=Detail, description=text, generate_examples=False)
    for status, text in (
        (401, "Invalid service key"),
        (403, "The id belongs to another account"),
        (404, "Service not found"),
        (409, "Refused in the service's current state"),
        (422, "Missing service key or invalid body"),
    )
}

ServiceKey = Annotated[
    str | None, HeaderParameter(name="X-Service-Key", description="The registry's TTL key: writes need it")
]


class TtlDialect(Controller):
    """Service registration with TTL keepalive (seed 004)."""

    path = "/"

    @post("/$register", status_code=200, responses=DETAIL, summary="Register a service")
    async def register(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RegisterRequest],
        registry_core: NamedDependency[Registry],
        registry_ttl_writer: NamedDependency[Principal],
        registry_ttl: NamedDependency[TtlSettings],
    ) -> RegisterResponse:
        """Register or re-register (latest wins; ``registered_at`` is kept). Never a conflict for a known id."""
        raw_info = msgspec.json.decode(await request.body())["info"]
        info = data.info
        registration = Registration(
            slug=info.id,
            name=info.display_name,
            version=info.version,
            description=info.description,
            base_url=data.url,
            ttl_seconds=data.ttl_seconds or registry_ttl.ttl_seconds,
            expiry_windows=registry_ttl.expiry_windows,
            extensions={EXTENSION: {"info": raw_info}},
        )
        record, created = await registry_core.upsert(registration, registry_ttl_writer)
        return RegisterResponse(
            id=record.slug,
            status="registered",
            service_url=data.url,
            message="Service registered successfully" if created else "Service registration updated",
            ttl_seconds=record.ttl_seconds,
            ping_url=f"{str(request.base_url).rstrip('/')}{registry_ttl.path}/{record.slug}/$ping",
        )

    @put("/{service_id:str}/$ping", responses=DETAIL, summary="Keepalive ping")
    async def ping(
        self,
        service_id: FromPath[str],
        registry_core: NamedDependency[Registry],
        registry_ttl_writer: NamedDependency[Principal],
    ) -> PingResponse:
        """Reset the service's TTL. 404 for an unknown or expired id: the client's cue to register again."""
        record = await registry_core.ping(service_id, registry_ttl_writer)
        return PingResponse(
            id=record.slug, status="alive", last_ping_at=_iso(record.last_seen_at), expires_at=_iso(record.expires_at)
        )

    @get("/", responses=DETAIL, summary="List services")
    async def list_services(self, registry_core: NamedDependency[Registry]) -> ServiceList:
        """Every live service (public)."""
        entries = [_entry(record) for record in await registry_core.all_live()]
        return ServiceList(count=len(entries), services=entries)

    @get("/{service_id:str}", responses=DETAIL, summary="Get a service")
    async def get_service(self, service_id: FromPath[str], registry_core: NamedDependency[Registry]) -> ServiceEntry:
        """One live service (public); 404 once it went silent past its TTL, swept or not."""
        return _entry(await registry_core.get_live(service_id))

    @delete("/{service_id:str}", status_code=204, responses=DETAIL, summary="Deregister a service")
    async def deregister(
        self,
        service_id: FromPath[str],
        registry_core: NamedDependency[Registry],
        registry_ttl_writer: NamedDependency[Principal],
    ) -> None:
        """Remove the service."""
        await registry_core.get_live(service_id)
        await registry_core.deregister(service_id, registry_ttl_writer, reason="deregistered through the TTL dialect")


class TtlSettings(msgspec.Struct, kw_only=True, frozen=True):
    """What the TTL dialect's handlers need from the config."""

    path: str
    ttl_seconds: float
    expiry_windows: int
    account: str
    key: str | None
    open: bool = False
    """Without a key, whether anyone may write (``ttl_open``); otherwise writes answer 401."""


def ttl_router(
    registry: Registry,
    settings: TtlSettings,
    *,
    include_in_schema: bool,
    tags: list[str],
    max_body_bytes: int,
    guards: Sequence[Guard] = (),
) -> Router:
    """The TTL dialect's Router at ``settings.path``, with its own dependencies and ``{"detail"}`` errors.

    ``max_body_bytes`` bounds what one registration stores: ``info`` is kept as sent, unknown fields included.
    ``guards`` are the host's, as on every Router the plugin mounts.
    """
    principal = Principal(account=settings.account, role=Role.SERVICE)
    expected = settings.key.encode() if settings.key else None

    def provide_core() -> Registry:
        return registry

    def provide_settings() -> TtlSettings:
        return settings

    def provide_writer(x_service_key: ServiceKey = None) -> Principal:
        if expected is None:
            if settings.open:
                return principal
            raise errors.AuthenticationRequired("Writes are closed: this registry has no service key configured")
        if x_service_key is None:
            raise ValidationException(
                "X-Service-Key header is required",
                extra=[{"key": "x-service-key", "source": "header", "message": "Field required"}],
            )
        if not hmac.compare_digest(x_service_key.encode(), expected):
            raise errors.AuthenticationRequired("Invalid service key")
        return principal

    return Router(
        path=settings.path,
        route_handlers=[TtlDialect],
        dependencies={
            "registry_core": Provide(provide_core, sync_to_thread=False),
            "registry_ttl": Provide(provide_settings, sync_to_thread=False),
            "registry_ttl_writer": Provide(provide_writer, sync_to_thread=False),
        },
        exception_handlers=HANDLERS,
        guards=list(guards),
        include_in_schema=include_in_schema,
        tags=tags,
        request_max_body_size=max_body_bytes,
    )
