"""``RegistryClientConfig``: how an app announces itself, from code or ``REGISTRY_CLIENT_*`` environment variables.

Importing it needs neither Litestar nor the server's modules.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from litestar_registry.client.keepalive import StateCallback
from litestar_registry.client.models import Entrypoint, Owner
from litestar_registry.client.targets import HealthSource

__all__ = ("CLIENT_ENV_PREFIX", "ClientConfigurationError", "RegistryClientConfig")

CLIENT_ENV_PREFIX = "REGISTRY_CLIENT_"
DIALECTS = ("registry", "ttl")


class ClientConfigurationError(ValueError):
    """A client setting is missing, or does not parse."""


def _env(name: str) -> dict[str, Any]:
    """Field metadata naming the environment variable that sets the field."""
    return {"env": CLIENT_ENV_PREFIX + name}


@dataclass
class RegistryClientConfig:
    """Configuration of :class:`~litestar_registry.client.RegistryClientPlugin`.

    Each field with an environment variable can also be set through it: see :meth:`from_env`.
    """

    url: str = field(default="", metadata=_env("URL"))
    """The registry's base URL (the app that mounts it), e.g. ``http://registry:8000``. Required while ``enabled``."""
    dialect: str = field(default="registry", metadata=_env("DIALECT"))
    """``registry``: register and heartbeat (with health) under ``registry_path``; ``ttl``: ``$register`` and
    ``$ping`` under ``ttl_path``."""
    token: str | None = field(default=None, metadata=_env("TOKEN"))
    """The service account's key, sent as ``Authorization: Bearer`` (registry dialect)."""
    service_key: str | None = field(default=None, metadata=_env("SERVICE_KEY"))
    """The ``X-Service-Key`` of the TTL dialect."""
    registry_path: str = field(default="/api/v1", metadata=_env("REGISTRY_PATH"))
    """Where the registry dialect is mounted on the registry (its ``REGISTRY_PATH``)."""
    ttl_path: str = field(default="/v2/services", metadata=_env("TTL_PATH"))
    """Where the TTL dialect is mounted on the registry (its ``REGISTRY_TTL_PATH``)."""

    slug: str = field(default="", metadata=_env("SLUG"))
    """The service's id in the registry. Required while ``enabled``."""
    name: str | None = field(default=None, metadata=_env("NAME"))
    """Its display name; unset: the slug."""
    version: str = field(default="1.0.0", metadata=_env("VERSION"))
    """The version it runs; every heartbeat reports it."""
    description: str | None = field(default=None, metadata=_env("DESCRIPTION"))
    """What the service does."""
    base_url: str | None = field(default=None, metadata=_env("BASE_URL"))
    """Where other services reach this app, e.g. ``http://billing:8080``."""
    health_url: str | None = field(default=None, metadata=_env("HEALTH_URL"))
    """The app's own health route, as others reach it."""
    documentation_url: str | None = field(default=None, metadata=_env("DOCUMENTATION_URL"))
    """Where its documentation lives (registry dialect)."""
    capabilities: Sequence[str] = field(default=(), metadata=_env("CAPABILITIES"))
    """What it offers, for discovery by capability (registry dialect)."""
    tags: Sequence[str] = field(default=(), metadata=_env("TAGS"))
    """Free labels, for filtering lists (registry dialect)."""
    ttl_seconds: float | None = field(default=None, metadata=_env("TTL_SECONDS"))
    """The TTL to ask for; unset takes the registry's default. Contact comes every third of it."""
    instance_id: str | None = field(default=None, metadata=_env("INSTANCE_ID"))
    """Which instance reports in heartbeats; unset: ``host:pid``."""

    ready_url: str | None = field(default=None, metadata=_env("READY_URL"))
    """Probed until it answers (any status below 500) before the first registration, so that the app is announced only
    once it serves; unset: ``health_url``, else ``base_url``; with neither, it registers once the app has started."""
    ready_timeout_seconds: float = field(default=30.0, metadata=_env("READY_TIMEOUT_SECONDS"))
    """How long to wait for ``ready_url`` before registering anyway (with a warning)."""
    timeout_seconds: float = field(default=10.0, metadata=_env("TIMEOUT_SECONDS"))
    """Connect, read and write timeout of each request to the registry."""
    backoff_base_seconds: float = field(default=0.5, metadata=_env("BACKOFF_BASE_SECONDS"))
    """The first retry's ceiling after a failure; it doubles with each failure, up to a third of the TTL."""
    deregister_on_shutdown: bool = field(default=True, metadata=_env("DEREGISTER_ON_SHUTDOWN"))
    """Deregister when the app shuts down gracefully, instead of letting the registration expire."""
    enabled: bool = field(default=True, metadata=_env("ENABLED"))
    """Announce the app at all (off: the plugin does nothing)."""

    endpoints: Sequence[Entrypoint] = ()
    """The service's entrypoints, for discovery (registry dialect) (code only)."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """Free data stored with the registration (registry dialect) (code only)."""
    owner: Owner | None = None
    """Who to contact about the service (registry dialect) (code only)."""
    model_metadata: Mapping[str, Any] = field(default_factory=dict)
    """``info.model_metadata`` of the TTL dialect's registration (code only)."""
    health: HealthSource | None = None
    """The host's health, reported in every heartbeat: returns a :class:`~litestar_registry.client.Health`; a
    coroutine function is awaited, a plain function runs in a worker thread (code only)."""
    on_state: StateCallback | None = None
    """Called on every change of the keepalive's state (healthy, retrying, re-registered, ...) (code only)."""

    def __post_init__(self) -> None:
        if self.dialect not in DIALECTS:
            raise ClientConfigurationError(f"RegistryClientConfig.dialect must be one of {DIALECTS}")
        if self.ttl_seconds is not None and self.ttl_seconds <= 0:
            raise ClientConfigurationError("RegistryClientConfig.ttl_seconds must be positive")
        if self.timeout_seconds <= 0 or self.backoff_base_seconds <= 0 or self.ready_timeout_seconds < 0:
            raise ClientConfigurationError("timeout_seconds and backoff_base_seconds must be positive")
        if not self.enabled:
            return
        if not self.url.startswith(("http://", "https://")):
            raise ClientConfigurationError(
                f"{CLIENT_ENV_PREFIX}URL (RegistryClientConfig.url) must be the registry's http(s) URL"
            )
        if not self.slug:
            raise ClientConfigurationError(f"{CLIENT_ENV_PREFIX}SLUG (RegistryClientConfig.slug) is required")
        if self.dialect == "ttl" and not self.base_url:
            raise ClientConfigurationError(f"the TTL dialect needs {CLIENT_ENV_PREFIX}BASE_URL: its registration's url")

    @property
    def probe_url(self) -> str | None:
        """What the plugin probes before registering: ``ready_url``, else ``health_url``, else ``base_url``."""
        return self.ready_url or self.health_url or self.base_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> RegistryClientConfig:
        """Build a config from ``REGISTRY_CLIENT_*`` variables; keyword arguments win over the environment."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields(cls):
            name = spec.metadata.get("env")
            if name is None or name not in environ or spec.name in overrides:
                continue
            values[spec.name] = _parse(name, environ[name], str(spec.type))
        return cls(**values, **overrides)

    @classmethod
    def environment_variables(cls) -> list[tuple[str, str, str]]:
        """``(variable, field, default)`` for every setting the environment can set (for the docs table).

        The default is written as the variable would hold it: ``true``, ``10.0``, ``a,b``; empty for none.
        """
        defaults = {spec.name: spec.default for spec in fields(cls)}
        return [
            (spec.metadata["env"], spec.name, _show(defaults[spec.name]))
            for spec in fields(cls)
            if "env" in spec.metadata
        ]


def _parse(name: str, raw: str, annotation: str) -> Any:
    """``raw`` as the field's type: bool, float, str, or a comma-separated ``Sequence[str]``; empty unsets optionals."""
    text = raw.strip()
    kind, optional = annotation.removesuffix(" | None"), annotation.endswith(" | None")
    if optional and not text:
        return None
    try:
        if kind == "bool":
            if text.lower() in {"1", "true", "yes", "on"}:
                return True
            if text.lower() in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(text)
        if kind == "float":
            return float(text)
        if kind.startswith("Sequence"):
            return tuple(item.strip() for item in text.split(",") if item.strip())
    except ValueError as exc:  # only booleans and numbers fail: no key is ever shown
        raise ClientConfigurationError(f"{name}={raw!r} is not a valid value") from exc
    return text


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value).lower() if isinstance(value, bool) else str(value)
