"""Wire shapes of the registry dialect (seed 000), the entrypoints and admin routes.

Constraints are ``msgspec.Meta`` annotations (``Parameter`` ones for paths and queries) so that they are enforced on
input and shown in the OpenAPI document. Request bodies forbid unknown fields: a typo is a 422, not a silently dropped
setting. No text may hold U+0000, which PostgreSQL cannot store, and every query string is bounded.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar.enums import RequestEncodingType
from litestar.params import Body, PathParameter, QueryParameter

from litestar_registry.core.models import Entrypoint, HealthReport, Owner, ServiceRecord, ServiceStatus, VersionEntry
from litestar_registry.core.validation import (
    MAX_DEPTH,
    MAX_ITEMS,
    NO_NUL_PATTERN,
    SEARCH_MAX_LENGTH,
    SLUG_MAX_LENGTH,
    SLUG_PATTERN,
)

__all__ = (
    "CLOSED_JSON",
    "UUID",
    "CursorQuery",
    "DeregistrationRequest",
    "EntrypointIn",
    "EntrypointView",
    "Envelope",
    "FieldError",
    "HealthStatus",
    "HeartbeatRequest",
    "HeartbeatResponse",
    "LabelQuery",
    "Meta",
    "OwnerIn",
    "Problem",
    "RegistrationRequest",
    "RegistrationResponse",
    "SearchQuery",
    "ServiceEntrypoints",
    "ServiceView",
    "SlugPath",
    "VersionView",
)

CLOSED_JSON = Body(media_type=RequestEncodingType.JSON, schema_extra={"additionalProperties": False})
"""A JSON body whose unknown fields are refused (422), as its schema says."""
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""The ids the registry hands out for workflows and subscriptions (lower-case UUIDs)."""

T = TypeVar("T")

Slug = Annotated[
    str,
    msgspec.Meta(
        pattern=SLUG_PATTERN,
        min_length=1,
        max_length=SLUG_MAX_LENGTH,
        description="Lowercase letter first, then lowercase letters, digits and single hyphens.",
        examples=["billing-api"],
    ),
]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NO_NUL_PATTERN)]
Text = Annotated[str, msgspec.Meta(max_length=2_000, pattern=NO_NUL_PATTERN)]
Url = Annotated[
    str, msgspec.Meta(min_length=1, max_length=2_048, pattern=NO_NUL_PATTERN, examples=["http://billing:8080"])
]
Version = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=NO_NUL_PATTERN, examples=["1.4.2"])]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NO_NUL_PATTERN)]
Labels = Annotated[list[Label], msgspec.Meta(max_length=MAX_ITEMS)]
Metadata = Annotated[
    dict[Annotated[str, msgspec.Meta(max_length=100, pattern=NO_NUL_PATTERN)], Any],
    msgspec.Meta(
        max_length=MAX_ITEMS,
        description=f"Free-form JSON: no text with U+0000, integers within 64 bits, at most {MAX_DEPTH} levels deep.",
    ),
]
TtlSeconds = Annotated[float, msgspec.Meta(gt=0, description="Contact window in seconds, within the registry bounds.")]

SlugPath = Annotated[
    str,
    PathParameter(pattern=SLUG_PATTERN, min_length=1, max_length=SLUG_MAX_LENGTH, description="The service's slug."),
]
LabelQuery = Annotated[
    str | None, QueryParameter(min_length=1, max_length=100, pattern=NO_NUL_PATTERN, description="An exact label.")
]
SearchQuery = Annotated[
    str | None,
    QueryParameter(
        max_length=SEARCH_MAX_LENGTH,
        pattern=NO_NUL_PATTERN,
        description="Case-insensitive substring of slug, name or description.",
    ),
]
CursorQuery = Annotated[
    str | None,
    QueryParameter(
        max_length=128,
        pattern="^[A-Za-z0-9_-]*={0,2}$",
        description="`meta.next_cursor` of the previous page, as it was handed out.",
    ),
]


class HealthStatus(enum.StrEnum):
    """What a heartbeat reports."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


class EntrypointIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One way to reach the service."""

    name: Label
    url: Url
    protocol: Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=NO_NUL_PATTERN)] = "http"
    method: Annotated[str, msgspec.Meta(max_length=16, pattern=NO_NUL_PATTERN)] | None = None
    description: Text | None = None


class OwnerIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Who to contact about the service."""

    name: Name | None = None
    email: Annotated[str, msgspec.Meta(max_length=320, pattern=NO_NUL_PATTERN)] | None = None
    url: Url | None = None


class RegistrationRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A service's registration (seed 000): 13 fields, the account comes from the credential."""

    slug: Slug
    name: Name
    version: Version
    description: Text | None = None
    base_url: Url | None = None
    health_url: Url | None = None
    endpoints: Annotated[list[EntrypointIn], msgspec.Meta(max_length=MAX_ITEMS)] = msgspec.field(default_factory=list)
    capabilities: Labels = msgspec.field(default_factory=list)
    tags: Labels = msgspec.field(default_factory=list)
    metadata: Metadata = msgspec.field(default_factory=dict)
    owner: OwnerIn | None = None
    documentation_url: Url | None = None
    ttl_seconds: TtlSeconds | None = None


class DeregistrationRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which service leaves, and why."""

    slug: Slug
    reason: Text | None = None


class HeartbeatRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A heartbeat (seed 000): 9 fields."""

    slug: Slug
    status: HealthStatus = HealthStatus.HEALTHY
    version: Version | None = None
    uptime_seconds: Annotated[float, msgspec.Meta(ge=0)] | None = None
    instance_id: Annotated[str, msgspec.Meta(max_length=200, pattern=NO_NUL_PATTERN)] | None = None
    message: Text | None = None
    checks: Annotated[dict[Label, HealthStatus], msgspec.Meta(max_length=MAX_ITEMS)] = msgspec.field(
        default_factory=dict
    )
    metrics: Annotated[dict[Label, float], msgspec.Meta(max_length=MAX_ITEMS)] = msgspec.field(default_factory=dict)
    timestamp: datetime | None = None


class ServiceView(msgspec.Struct, kw_only=True):
    """A service as the registry dialect shows it."""

    slug: str
    name: str
    version: str
    status: ServiceStatus
    description: str | None
    base_url: str | None
    health_url: str | None
    documentation_url: str | None
    endpoints: list[Entrypoint]
    capabilities: list[str]
    tags: list[str]
    metadata: dict[str, Any]
    owner: Owner | None
    ttl_seconds: float
    failure_count: int
    registered_at: datetime
    updated_at: datetime
    last_heartbeat_at: datetime
    next_heartbeat_due_at: datetime | None
    expires_at: datetime | None
    health: HealthReport | None

    @classmethod
    def of(cls, record: ServiceRecord) -> ServiceView:
        """Render a record; deadlines show only for services that keep time."""
        live = record.status in (ServiceStatus.ACTIVE, ServiceStatus.DEGRADED)
        return cls(
            slug=record.slug,
            name=record.name,
            version=record.version,
            status=record.status,
            description=record.description,
            base_url=record.base_url,
            health_url=record.health_url,
            documentation_url=record.documentation_url,
            endpoints=list(record.endpoints),
            capabilities=list(record.capabilities),
            tags=list(record.tags),
            metadata=record.metadata,
            owner=record.owner,
            ttl_seconds=record.ttl_seconds,
            failure_count=record.failure_count,
            registered_at=record.registered_at,
            updated_at=record.updated_at,
            last_heartbeat_at=record.last_seen_at,
            next_heartbeat_due_at=record.deadline_at if live else None,
            expires_at=record.expires_at if live else None,
            health=record.health,
        )


class RegistrationResponse(ServiceView, kw_only=True):
    """The registered service, whether it was approved, and whether this request changed it."""

    approved: bool
    changed: bool


class HeartbeatResponse(msgspec.Struct, kw_only=True):
    """The registry's acknowledgement of a heartbeat."""

    slug: str
    status: ServiceStatus
    acknowledged_at: datetime
    next_heartbeat_due_at: datetime
    failure_count: int
    version_changed: bool


class VersionView(msgspec.Struct, kw_only=True):
    """One entry of a service's version history."""

    version: str
    previous_version: str | None
    recorded_at: datetime

    @classmethod
    def of(cls, entry: VersionEntry) -> VersionView:
        """Render a history entry."""
        return cls(version=entry.version, previous_version=entry.previous_version, recorded_at=entry.recorded_at)


class EntrypointView(msgspec.Struct, kw_only=True):
    """An entrypoint, as discovery hands it out."""

    name: str
    url: str
    protocol: str
    method: str | None
    description: str | None


class ServiceEntrypoints(msgspec.Struct, kw_only=True):
    """The entrypoints of one active service."""

    slug: str
    name: str
    version: str
    capabilities: list[str]
    entrypoints: list[EntrypointView]


class Meta(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Response metadata: the request id always; list responses add pagination."""

    request_id: str
    count: int | None = None
    next_cursor: str | None = None
    limit: int | None = None
    index: int | None = None
    """The service list's: the change log's last id when it was read (the long poll's ``index``)."""


class Envelope(msgspec.Struct, Generic[T], kw_only=True):
    """The ``{data, meta}`` envelope of every successful registry-dialect response."""

    data: T
    meta: Meta


class FieldError(msgspec.Struct, kw_only=True):
    """One invalid input field."""

    field: str
    message: str


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An RFC 9457 problem: every error of the registry routes, as ``application/problem+json``.

    ``code`` and ``trace_id`` are always there; the other extension members only where they apply.
    """

    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str
    trace_id: str
    errors: list[FieldError] | None = None
    """Validation failures (422) only: each invalid field."""
    slug: str | None = None
    """The service a 404 is about."""
    dependents: list[str] | None = None
    """What keeps a service from being deregistered (409)."""
    service_status: ServiceStatus | None = None
    """Where a slug that is already registered stands (409)."""
