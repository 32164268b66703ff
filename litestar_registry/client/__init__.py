"""The registry's client side: a typed client of both dialects, a keepalive, and a plugin that announces an app.

Everything but :class:`RegistryClientPlugin` needs only httpx and msgspec (the ``client`` extra); names are imported
on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = (
    "ClientConfigurationError",
    "Entrypoint",
    "FieldError",
    "Health",
    "HealthReport",
    "HealthSource",
    "HealthStatus",
    "Heartbeat",
    "HeartbeatAck",
    "KeepAlive",
    "KeepAliveEvent",
    "KeepAliveState",
    "KeepAliveTarget",
    "Owner",
    "ProblemError",
    "Registered",
    "Registration",
    "RegistryClient",
    "RegistryClientConfig",
    "RegistryClientError",
    "RegistryClientPlugin",
    "RegistryDialectTarget",
    "RegistryHTTPError",
    "RegistryUnavailable",
    "Service",
    "ServiceEntrypoints",
    "StateCallback",
    "TtlDialectClient",
    "TtlDialectTarget",
    "TtlPong",
    "TtlRegistered",
    "TtlRegistration",
    "TtlService",
    "TtlServiceInfo",
    "UnexpectedResponse",
)

if TYPE_CHECKING:
    from litestar_registry.client.client import RegistryClient, TtlDialectClient
    from litestar_registry.client.config import ClientConfigurationError, RegistryClientConfig
    from litestar_registry.client.errors import (
        ProblemError,
        RegistryClientError,
        RegistryHTTPError,
        RegistryUnavailable,
        UnexpectedResponse,
    )
    from litestar_registry.client.keepalive import (
        KeepAlive,
        KeepAliveEvent,
        KeepAliveState,
        KeepAliveTarget,
        StateCallback,
    )
    from litestar_registry.client.models import (
        Entrypoint,
        FieldError,
        Health,
        HealthReport,
        HealthStatus,
        Heartbeat,
        HeartbeatAck,
        Owner,
        Registered,
        Registration,
        Service,
        ServiceEntrypoints,
        TtlPong,
        TtlRegistered,
        TtlRegistration,
        TtlService,
        TtlServiceInfo,
    )
    from litestar_registry.client.plugin import RegistryClientPlugin
    from litestar_registry.client.targets import HealthSource, RegistryDialectTarget, TtlDialectTarget

_MODULES = {
    "client": ("RegistryClient", "TtlDialectClient"),
    "config": ("ClientConfigurationError", "RegistryClientConfig"),
    "errors": ("ProblemError", "RegistryClientError", "RegistryHTTPError", "RegistryUnavailable", "UnexpectedResponse"),
    "keepalive": ("KeepAlive", "KeepAliveEvent", "KeepAliveState", "KeepAliveTarget", "StateCallback"),
    "models": (
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
    ),
    "plugin": ("RegistryClientPlugin",),
    "targets": ("HealthSource", "RegistryDialectTarget", "TtlDialectTarget"),
}
_LAZY = {name: f"litestar_registry.client.{module}" for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    """Import public names on first use: the plugin (and Litestar) only when asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'litestar_registry.client' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
