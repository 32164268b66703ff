"""The client's own wire shapes: what it sends and what it reads back, for both dialects.

They mirror the server's schemas but are declared here, so that a client needs neither Litestar nor the server's
modules. Responses accept unknown fields (a newer registry may add some); requests omit what is unset.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import msgspec

__all__ = (
    "Entrypoint",
    "FieldError",
    "Health",
    "HealthReport",
    "HealthStatus",
    "Heartbeat",
    "HeartbeatAck",
    "Owner",
    "Registered",
    "Registration",
    "Service",
    "ServiceEntrypoints",
    "TtlPong",
    "TtlRegistered",
    "TtlRegistration",
    "TtlService",
    "TtlServiceInfo",
)


class HealthStatus(enum.StrEnum):
    """What a heartbeat reports about the service."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


class Entrypoint(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One way to reach a service: sent in a registration, read back from discovery."""

    name: str
    url: str
    protocol: str = "http"
    method: str | None = None
    description: str | None = None


class Owner(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Who to contact about a service."""

    name: str | None = None
    email: str | None = None
    url: str | None = None


class Registration(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A registration in the registry dialect (``POST``/``PUT {path}/registry/register``)."""

    slug: str
    name: str
    version: str
    description: str | None = None
    base_url: str | None = None
    health_url: str | None = None
    endpoints: list[Entrypoint] = msgspec.field(default_factory=list)
    capabilities: list[str] = msgspec.field(default_factory=list)
    tags: list[str] = msgspec.field(default_factory=list)
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    owner: Owner | None = None
    documentation_url: str | None = None
    ttl_seconds: float | None = None
    """The contact window asked for; unset takes the registry's default (which also bounds it)."""


class Health(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What a host reports about itself in each heartbeat (the announcing plugin's ``health`` callable returns it)."""

    status: HealthStatus = HealthStatus.HEALTHY
    message: str | None = None
    checks: dict[str, HealthStatus] = msgspec.field(default_factory=dict)
    metrics: dict[str, float] = msgspec.field(default_factory=dict)


class Heartbeat(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A heartbeat in the registry dialect (``POST {path}/registry/heartbeat``)."""

    slug: str
    status: HealthStatus = HealthStatus.HEALTHY
    version: str | None = None
    uptime_seconds: float | None = None
    instance_id: str | None = None
    message: str | None = None
    checks: dict[str, HealthStatus] = msgspec.field(default_factory=dict)
    metrics: dict[str, float] = msgspec.field(default_factory=dict)
    timestamp: datetime | None = None


class HealthReport(msgspec.Struct, kw_only=True):
    """The last health a service reported, as the registry shows it."""

    status: str
    uptime_seconds: float | None = None
    instance_id: str | None = None
    message: str | None = None
    checks: dict[str, str] = msgspec.field(default_factory=dict)
    metrics: dict[str, float] = msgspec.field(default_factory=dict)
    reported_at: datetime | None = None


class Service(msgspec.Struct, kw_only=True):
    """A service as the registry dialect shows it."""

    slug: str
    name: str
    version: str
    status: str
    """``pending``, ``active``, ``degraded``, ``rejected``, ``expired`` or ``deregistered``."""
    ttl_seconds: float
    failure_count: int
    registered_at: datetime
    updated_at: datetime
    last_heartbeat_at: datetime
    description: str | None = None
    base_url: str | None = None
    health_url: str | None = None
    documentation_url: str | None = None
    endpoints: list[Entrypoint] = msgspec.field(default_factory=list)
    capabilities: list[str] = msgspec.field(default_factory=list)
    tags: list[str] = msgspec.field(default_factory=list)
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    owner: Owner | None = None
    next_heartbeat_due_at: datetime | None = None
    expires_at: datetime | None = None
    health: HealthReport | None = None


class Registered(Service, kw_only=True):
    """The answer to a registration: the service, whether it is approved, whether the request changed it."""

    approved: bool
    changed: bool


class HeartbeatAck(msgspec.Struct, kw_only=True):
    """The registry's acknowledgement of a heartbeat."""

    slug: str
    status: str
    acknowledged_at: datetime
    next_heartbeat_due_at: datetime
    failure_count: int
    version_changed: bool


class ServiceEntrypoints(msgspec.Struct, kw_only=True):
    """The entrypoints of one active service, as discovery hands them out."""

    slug: str
    name: str
    version: str
    capabilities: list[str] = msgspec.field(default_factory=list)
    entrypoints: list[Entrypoint] = msgspec.field(default_factory=list)


class FieldError(msgspec.Struct, kw_only=True):
    """One invalid input field of a 422."""

    field: str
    message: str


class TtlServiceInfo(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A service's self-description in the TTL dialect (``MLServiceInfo``)."""

    id: str
    display_name: str
    model_metadata: dict[str, Any]
    """Who made the model (``author``, ``organization``, ...); required by the dialect, even when empty."""
    version: str = "1.0.0"
    description: str | None = None
    period_type: str | None = None
    min_prediction_periods: int | None = None
    max_prediction_periods: int | None = None


class TtlRegistration(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A registration in the TTL dialect (``POST {ttl_path}/$register``)."""

    url: str
    info: TtlServiceInfo
    ttl_seconds: float | None = None


class TtlRegistered(msgspec.Struct, kw_only=True):
    """The TTL dialect's answer to a registration; ``ttl_seconds`` may arrive as an integer or a float."""

    id: str
    status: str
    service_url: str
    message: str
    ttl_seconds: float
    ping_url: str


class TtlPong(msgspec.Struct, kw_only=True):
    """The TTL dialect's answer to a ping."""

    id: str
    status: str
    last_ping_at: datetime
    expires_at: datetime


class TtlService(msgspec.Struct, kw_only=True):
    """A live service as the TTL dialect lists it."""

    id: str
    info: dict[str, Any] = msgspec.field(default_factory=dict)
    url: str | None = None
    registered_at: datetime | None = None
    last_updated: datetime | None = None
    last_ping_at: datetime | None = None
    expires_at: datetime | None = None
