"""The TTL dialect (seed 004): ``$register``, ``$ping``, list, get, delete, in the plain shapes its clients expect.

Its errors are ``{"detail": ...}`` as those clients know them (a 404 on ping is what makes a client re-register),
not problem+json: this Router has its own exception handlers, separate from the registry dialect's.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar

import msgspec
from litestar import Controller, Request, Response, Router, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, PathParameter
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_422_UNPROCESSABLE_ENTITY, HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap, Guard

from litestar_registry.api.bodies import held_to_schema
from litestar_registry.api.dependencies import bind
from litestar_registry.api.feed import INDEX_HEADER, FeedSettings, IndexQuery, WaitQuery, index_header, long_poll
from litestar_registry.api.openapi import TTL_KEY, WRITE, secure
from litestar_registry.api.problems import TOO_DEEP, invalid_fields, log_unexpected, status_of
from litestar_registry.api.routers import registry_router
from litestar_registry.core import errors
from litestar_registry.core.auth import Principal, Role
from litestar_registry.core.feed import FeedHub
from litestar_registry.core.models import Registration, ServiceRecord
from litestar_registry.core.registry import Registry
from litestar_registry.core.validation import NO_NUL_PATTERN, SLUG_MAX_LENGTH, SLUG_PATTERN

__all__ = ("TtlDialect", "ttl_router")

logger = logging.getLogger("litestar_registry")

EXTENSION = "v2"
"""Key under ``ServiceRecord.extensions`` of the TTL dialect's ``info``: as sent, defaults filled in, nulls left out."""


Text = Annotated[str, msgspec.Meta(max_length=2_000, pattern=NO_NUL_PATTERN)]
Slug = Annotated[
    str,
    msgspec.Meta(
        pattern=SLUG_PATTERN,
        min_length=1,
        max_length=SLUG_MAX_LENGTH,
        description="Lowercase letter first, then lowercase letters, digits and single hyphens.",
        examples=["my-model"],
    ),
]
ServiceId = Annotated[
    str,
    PathParameter(
        pattern=SLUG_PATTERN,
        min_length=1,
        max_length=SLUG_MAX_LENGTH,
        description="The service's id (its slug).",
    ),
]


class ModelMetadata(msgspec.Struct, kw_only=True):
    """Who made the model (seed 004); further fields are kept as sent, fields sent as null are left out."""

    author: Text | None = None
    organization: Text | None = None
    contact_email: Text | None = None


class ServiceInfo(msgspec.Struct, kw_only=True):
    """The service's self-description (``MLServiceInfo``); unknown fields are kept as sent, not refused.

    What is kept is ``info`` with the defaults filled in and the fields sent as null left out, at every depth.
    """

    id: Slug
    display_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NO_NUL_PATTERN)]
    model_metadata: ModelMetadata
    version: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=NO_NUL_PATTERN)] = "1.0.0"
    description: Text | None = None
    period_type: Annotated[str, msgspec.Meta(pattern="^(weekly|monthly|any)$")] | None = None
    min_prediction_periods: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] = 0
    max_prediction_periods: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] = 100


INFO_DEFAULTS = {
    field.name: field.default
    for field in msgspec.structs.fields(ServiceInfo)
    if field.default not in (msgspec.NODEFAULT, None)
}
"""What ``info`` holds for a field the service does not send."""


class RegisterRequest(msgspec.Struct, kw_only=True):
    """``POST /$register``: where the service answers and what it is. Unknown top-level fields are ignored."""

    url: Annotated[
        str, msgspec.Meta(min_length=1, max_length=2_048, pattern=NO_NUL_PATTERN, examples=["http://my-model:8080"])
    ]
    info: ServiceInfo
    ttl_seconds: Annotated[float, msgspec.Meta(gt=0, description="Within the registry's TTL bounds.")] | None = None


class RegisterResponse(msgspec.Struct, kw_only=True):
    """The answer to a registration (seed 004)."""

    id: str
    status: str
    service_url: str
    message: str
    ttl_seconds: Annotated[float, msgspec.Meta(description="Seconds; a whole number is sent as an integer (30).")]
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


class ValidationItem(msgspec.Struct, kw_only=True):
    """One invalid part of a request: where (``["body", "info", "id"]``), what is wrong, and its kind."""

    loc: list[str]
    msg: str
    type: str


class Detail(msgspec.Struct, kw_only=True):
    """The TTL dialect's error body: a message, or (422) the list of what is invalid."""

    detail: str | list[ValidationItem]


def _iso(value: datetime) -> str:
    """ISO 8601 with an explicit ``+00:00`` offset, as the dialect's clients parse it."""
    return value.isoformat()


def _whole(value: float) -> float:
    """``value`` as an ``int`` when it is whole, so that JSON carries ``30``, as the dialect's clients expect."""
    return int(value) if value.is_integer() else value


def _without_nulls(value: Any) -> Any:
    """``value`` with every map entry whose value is null left out, at every depth."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _merged(sent: dict[str, Any], decoded: dict[str, Any]) -> dict[str, Any]:
    """``sent`` (unknown fields included) with the declared fields as decoded, defaults filled in, at every depth."""
    merged = dict(sent)
    for key, value in decoded.items():
        kept = merged.get(key)
        merged[key] = _merged(kept, value) if isinstance(kept, dict) and isinstance(value, dict) else value
    return merged


def _stored_info(sent: dict[str, Any], info: ServiceInfo) -> dict[str, Any]:
    """The ``info`` to keep: as sent, with the defaults filled in and the null fields left out."""
    result: dict[str, Any] = _without_nulls(_merged(sent, msgspec.to_builtins(info)))
    return result


def _info(record: ServiceRecord) -> dict[str, Any]:
    """The ``info`` to show: as kept, or made from the record for a service registered through the other dialect."""
    kept = record.extensions.get(EXTENSION, {}).get("info")
    if not isinstance(kept, dict):
        kept = {
            "id": record.slug,
            "display_name": record.name,
            "version": record.version,
            "description": record.description,
            "model_metadata": {},
        }
    shown: dict[str, Any] = _without_nulls({**kept, **{k: v for k, v in INFO_DEFAULTS.items() if kept.get(k) is None}})
    return shown


def _entry(record: ServiceRecord) -> ServiceEntry:
    return ServiceEntry(
        id=record.slug,
        info=_info(record),
        url=record.base_url,
        registered_at=_iso(record.registered_at),
        last_updated=_iso(record.updated_at),
        last_ping_at=_iso(record.last_seen_at),
        expires_at=_iso(record.expires_at),
    )


def _detail(status: int, detail: Any) -> Response[Detail]:
    return Response(Detail(detail=detail), status_code=status)


def _not_found(request: Request[Any, Any, Any], exc: errors.ServiceNotFound) -> Response[Detail]:
    return _detail(404, f"Service {exc.extra.get('slug', request.path_params.get('id', ''))} not found")


_WIRE_FIELDS = {
    "slug": "info.id",
    "name": "info.display_name",
    "version": "info.version",
    "description": "info.description",
    "base_url": "url",
}
"""Where a field of the core's ``Registration`` came from in this dialect's body."""


def _registry_error(request: Request[Any, Any, Any], exc: errors.RegistryError) -> Response[Detail]:
    if isinstance(exc, errors.InvalidInput):
        field = str(exc.extra.get("field", ""))
        loc = ["body", *_WIRE_FIELDS.get(field, field).split(".")]
        return _detail(HTTP_422_UNPROCESSABLE_ENTITY, [ValidationItem(loc=loc, msg=exc.detail, type="value_error")])
    return _detail(status_of(exc), exc.detail)


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Detail]:
    detail = [
        ValidationItem(loc=[source, *error.field.split(".")], msg=error.message, type="value_error")
        for source, error in invalid_fields(exc)
    ]
    return _detail(HTTP_422_UNPROCESSABLE_ENTITY, detail or str(exc.detail))


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Detail]:
    if exc.status_code >= HTTP_500_INTERNAL_SERVER_ERROR:
        trace_id = log_unexpected(request, exc, exc.status_code)
        return _detail(exc.status_code, f"Internal server error (trace id {trace_id})")
    return _detail(exc.status_code, str(exc.detail))


def _too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Detail]:
    return _detail(HTTP_400_BAD_REQUEST, TOO_DEEP)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Detail]:
    trace_id = log_unexpected(request, exc, HTTP_500_INTERNAL_SERVER_ERROR)
    return _detail(HTTP_500_INTERNAL_SERVER_ERROR, f"Internal server error (trace id {trace_id})")


HANDLERS: ExceptionHandlersMap = {
    errors.ServiceNotFound: _not_found,
    errors.RegistryError: _registry_error,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    RecursionError: _too_deep,
    Exception: _unexpected,
}


def _responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the ``{detail}`` errors a route can give, besides 400, 422 and 500, which any can."""
    return {
        status: ResponseSpec(data_container=Detail, description=_ERRORS[status], generate_examples=False)
        for status in sorted({400, 422, 500, *statuses})
    }


_ERRORS = {
    400: "Malformed request (a body that is not JSON, or is nested too deeply)",
    401: "Invalid service key",
    403: "The id belongs to another account",
    404: "Service not found",
    409: "Refused in the service's current state",
    413: "Request body too large",
    422: "Missing service key, or an invalid id or body",
    500: "Unexpected failure (logged with the trace id the detail names)",
}
KEYED_ERRORS = _responses(401, 403, 404, 409)
"""A ping or a deregistration: a wrong key, another account's id, an unknown id, a refusal in its state."""

ServiceKey = Annotated[
    str | None, HeaderParameter(name="X-Service-Key", description="The registry's TTL key: writes need it")
]


class TtlDialect(Controller):
    """Service registration with TTL keepalive (seed 004).

    :func:`ttl_router` mounts a subclass bound to one registry and its settings (``registry``, ``settings``): the
    handlers read them as attributes rather than as dependencies, so a ping resolves one dependency (its caller), and
    Litestar runs it inline instead of spawning a task group for a batch of them on every request.
    """

    path = "/"
    registry: ClassVar[Registry]
    settings: ClassVar[TtlSettings]

    @post(
        "/$register",
        status_code=200,
        responses=_responses(401, 403, 409, 413),
        security=TTL_KEY,
        opt=WRITE,
        summary="Register a service",
    )
    async def register(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RegisterRequest],
        registry_ttl_writer: NamedDependency[Principal],
    ) -> RegisterResponse:
        """Register or re-register (latest wins; ``registered_at`` is kept). Never a conflict for a known id."""
        await held_to_schema(request, data)
        settings = self.settings
        sent = msgspec.json.decode(await request.body())["info"]
        info = data.info
        registration = Registration(
            slug=info.id,
            name=info.display_name,
            version=info.version,
            description=info.description,
            base_url=data.url,
            ttl_seconds=data.ttl_seconds or settings.ttl_seconds,
            expiry_windows=settings.expiry_windows,
            extensions={EXTENSION: {"info": _stored_info(sent, info)}},
        )
        record, created = await self.registry.upsert(registration, registry_ttl_writer)
        return RegisterResponse(
            id=record.slug,
            status="registered",
            service_url=data.url,
            message="Service registered successfully" if created else "Service registration updated",
            ttl_seconds=_whole(record.ttl_seconds),
            ping_url=f"{str(request.base_url).rstrip('/')}{settings.path}/{record.slug}/$ping",
        )

    @put("/{id:str}/$ping", responses=KEYED_ERRORS, security=TTL_KEY, opt=WRITE, summary="Keepalive ping")
    async def ping(
        self,
        id: ServiceId,
        registry_ttl_writer: NamedDependency[Principal],
    ) -> PingResponse:
        """Reset the service's TTL. 404 for an unknown or expired id: the client's cue to register again."""
        record = await self.registry.ping(id, registry_ttl_writer)
        return PingResponse(
            id=record.slug, status="alive", last_ping_at=_iso(record.last_seen_at), expires_at=_iso(record.expires_at)
        )

    @get("/", responses=_responses(), summary="List services", response_headers=[index_header()])
    async def list_services(
        self,
        request: Request[Any, Any, Any],
        registry_feed: NamedDependency[FeedHub],
        registry_feed_settings: NamedDependency[FeedSettings],
        index: IndexQuery = None,
        wait: WaitQuery = None,
    ) -> Response[ServiceList]:
        """Every live service (public). With `index` (and `wait`), a long poll: answers once the registry changed."""
        current = await long_poll(request, registry_feed, registry_feed_settings, index, wait)
        entries = [_entry(record) for record in await self.registry.all_live()]
        return Response(ServiceList(count=len(entries), services=entries), headers={INDEX_HEADER: str(current)})

    @get("/{id:str}", responses=_responses(404), summary="Get a service")
    async def get_service(self, id: ServiceId) -> ServiceEntry:
        """One live service (public); 404 once it went silent past its TTL, swept or not."""
        return _entry(await self.registry.get_live(id))

    @delete(
        "/{id:str}",
        status_code=204,
        responses=KEYED_ERRORS,
        security=TTL_KEY,
        opt=WRITE,
        summary="Deregister a service",
    )
    async def deregister(
        self,
        id: ServiceId,
        registry_ttl_writer: NamedDependency[Principal],
    ) -> None:
        """Remove the service."""
        await self.registry.get_live(id)
        await self.registry.deregister(id, registry_ttl_writer, reason="deregistered through the TTL dialect")


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
    feed: Mapping[str, Provide],
) -> Router:
    """The TTL dialect's Router at ``settings.path``, with its own dependencies and ``{"detail"}`` errors.

    ``max_body_bytes`` bounds what one registration stores: ``info`` is kept as sent, unknown fields included.
    ``guards`` are the host's, as on every Router the plugin mounts. ``feed`` is the change feed's dependencies
    (:func:`~litestar_registry.api.feed.feed_dependencies`), for the list's long poll.
    """
    principal = Principal(account=settings.account, role=Role.SERVICE)
    expected = settings.key.encode() if settings.key else None

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

    router = registry_router(
        path=settings.path,
        route_handlers=[bind(TtlDialect, registry=registry, settings=settings)],
        dependencies={"registry_ttl_writer": Provide(provide_writer, sync_to_thread=False), **feed},
        handlers=HANDLERS,
        guards=guards,
        include_in_schema=include_in_schema,
        tags=tags,
        max_body_bytes=max_body_bytes,
    )
    if expected is None and settings.open:
        secure(router, WRITE, [])  # anyone may write: the document says so
    return router
