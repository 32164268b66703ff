"""``RegistryConfig``: every setting of the plugin, from code or from ``REGISTRY_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from litestar.exceptions import ImproperlyConfiguredException

from litestar_registry.core.clock import Clock, SystemClock

if TYPE_CHECKING:
    from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
    from litestar.types import Guard

    from litestar_registry.core.auth import Authenticator
    from litestar_registry.store.base import ServiceStore

__all__ = ("ENV_PREFIX", "DependentsCheck", "RegistryConfig")

ENV_PREFIX = "REGISTRY_"

DependentsCheck = Callable[[str], Awaitable[Sequence[str]]]
"""An async check the host supplies: given a slug, the names of its active dependents (say, subscriptions)."""


def _env(name: str) -> dict[str, Any]:
    """Field metadata naming the environment variable that sets the field."""
    return {"env": ENV_PREFIX + name}


@dataclass
class RegistryConfig:
    """Configuration of :class:`~litestar_registry.RegistryPlugin`.

    Each field documented with an environment variable can also be set through it: see :meth:`from_env`.
    """

    path: str = field(default="/api/v1", metadata=_env("PATH"))
    """Where the registry Router is mounted in the host app."""
    store_url: str = field(default="sqlite+aiosqlite:///registry.db", metadata=_env("STORE_URL"))
    """Which store: ``memory://``, a SQLAlchemy async URL (``sqlite+aiosqlite:///...``, ``postgresql+asyncpg://...``),
    or ``redis://`` / ``valkey://``."""
    create_schema: bool = field(default=True, metadata=_env("CREATE_SCHEMA"))
    """SQL store: bring its tables to the newest revision at startup (a fresh database gets them and is stamped, so
    the migrations take over later). In production set it off and run ``litestar registry db upgrade``."""
    store: ServiceStore | None = None
    """A ready store instance; takes precedence over ``store_url`` (code only)."""
    sqlalchemy_config: SQLAlchemyAsyncConfig | None = None
    """The host's own advanced-alchemy config, to share its engine instead of opening ours (code only). Our tables
    still live in their own metadata; the host's engine is not disposed by us."""

    guards: Sequence[Guard] = ()
    """Litestar guards applied to every registry route, on top of the registry's own authentication."""
    tags: Sequence[str] = field(default=("registry",), metadata=_env("TAGS"))
    """OpenAPI tags of the registry routes (the TTL dialect's add ``ttl``)."""
    include_in_schema: bool = field(default=True, metadata=_env("INCLUDE_IN_SCHEMA"))
    """Whether the registry routes appear in the host's OpenAPI document."""

    default_ttl_seconds: float = field(default=30.0, metadata=_env("DEFAULT_TTL_SECONDS"))
    """The contact window of a service that does not ask for its own."""
    min_ttl_seconds: float = field(default=1.0, metadata=_env("MIN_TTL_SECONDS"))
    """The shortest window a service may ask for."""
    max_ttl_seconds: float = field(default=86_400.0, metadata=_env("MAX_TTL_SECONDS"))
    """The longest window a service may ask for."""
    expiry_windows: int = field(default=3, metadata=_env("EXPIRY_WINDOWS"))
    """How many windows a service may miss before it expires (it is degraded from the first)."""
    sweep_interval_seconds: float = field(default=5.0, metadata=_env("SWEEP_INTERVAL_SECONDS"))
    """How often the background sweeper persists degradations and expiries."""
    sweep_batch_size: int = field(default=500, metadata=_env("SWEEP_BATCH_SIZE"))
    """How many due services one sweep claims at a time."""
    sweeper_enabled: bool = field(default=True, metadata=_env("SWEEPER_ENABLED"))
    """Run the sweeper in this app instance (reads check deadlines whether or not it runs)."""
    keep_deregistered: bool = field(default=False, metadata=_env("KEEP_DEREGISTERED"))
    """Keep a deregistered service's record (status ``deregistered``) instead of deleting it."""

    service_keys: Mapping[str, str | Sequence[str]] = field(default_factory=dict, metadata=_env("SERVICE_KEYS"))
    """Service accounts and their keys: ``{account: key}``, or ``{account: [key, ...]}`` while rotating. From the
    environment: ``account=key,account2=key2`` (an account named twice gets both keys). Keys have at least 16
    characters, and no key belongs to two accounts or roles."""
    admin_keys: Mapping[str, str | Sequence[str]] = field(default_factory=dict, metadata=_env("ADMIN_KEYS"))
    """Admin accounts, same shape as ``service_keys``."""
    auto_approve_accounts: frozenset[str] = field(default=frozenset(), metadata=_env("AUTO_APPROVE_ACCOUNTS"))
    """Accounts whose new services start active; others start pending until an admin approves them."""
    auto_approve_slugs: frozenset[str] = field(default=frozenset(), metadata=_env("AUTO_APPROVE_SLUGS"))
    """Slugs that start active whoever registers them."""
    auto_approve_all: bool = field(default=False, metadata=_env("AUTO_APPROVE_ALL"))
    """Approve every new service (closed networks, development)."""
    public_reads: bool = field(default=False, metadata=_env("PUBLIC_READS"))
    """Let unauthenticated callers list and discover services."""
    dev_mode: bool = field(default=False, metadata=_env("DEV_MODE"))
    """Honour ``X-Dev-Account`` / ``X-Dev-Role`` headers instead of keys. Never in production."""
    authenticator: Authenticator | None = None
    """Replaces the key-based authenticator (JWT/JWKS, say) (code only)."""
    dependents_check: DependentsCheck | None = None
    """Reports a service's active dependents; deregistration is refused while it names any (code only)."""

    max_body_bytes: int = field(default=65_536, metadata=_env("MAX_BODY_BYTES"))
    """Largest request body the registry routes (both dialects) accept; larger ones answer 413."""
    default_page_size: int = field(default=50, metadata=_env("DEFAULT_PAGE_SIZE"))
    """Services per page when the caller does not say."""
    max_page_size: int = field(default=500, metadata=_env("MAX_PAGE_SIZE"))
    """Most services per page."""

    ttl_path: str = field(default="/v2/services", metadata=_env("TTL_PATH"))
    """Where the TTL dialect (seed 004: ``$register``, ``$ping``) is mounted; empty to leave it out."""
    ttl_registration_key: str | None = field(default=None, metadata=_env("TTL_REGISTRATION_KEY"))
    """The ``X-Service-Key`` the TTL dialect's writes need. Unset: its writes are open, and a warning is logged."""
    ttl_seconds: float | None = field(default=None, metadata=_env("TTL_SECONDS"))
    """The TTL of services registered through the TTL dialect; unset takes ``default_ttl_seconds``."""
    ttl_expiry_windows: int = field(default=1, metadata=_env("TTL_EXPIRY_WINDOWS"))
    """Windows a TTL-dialect service may miss: 1 means silent past its TTL is gone (seed 004)."""
    ttl_account: str = field(default="servicekit", metadata=_env("TTL_ACCOUNT"))
    """The account that owns services registered through the TTL dialect (they are approved at once)."""

    clock: Clock = field(default_factory=SystemClock)
    """Where time comes from; tests pass a ``ManualClock`` (code only)."""

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ImproperlyConfiguredException(f"RegistryConfig.path must start with '/', got {self.path!r}")
        if not 0 < self.min_ttl_seconds <= self.default_ttl_seconds <= self.max_ttl_seconds:
            raise ImproperlyConfiguredException("RegistryConfig needs 0 < min_ttl <= default_ttl <= max_ttl")
        if self.expiry_windows < 1 or self.sweep_batch_size < 1 or self.sweep_interval_seconds <= 0:
            raise ImproperlyConfiguredException("expiry_windows, sweep_batch_size and sweep_interval must be positive")
        if self.ttl_path and not self.ttl_path.startswith("/"):
            raise ImproperlyConfiguredException(f"RegistryConfig.ttl_path must start with '/', got {self.ttl_path!r}")
        if self.ttl_expiry_windows < 1 or (self.ttl_seconds is not None and self.ttl_seconds <= 0):
            raise ImproperlyConfiguredException("ttl_expiry_windows and ttl_seconds must be positive")
        if not 0 < self.default_page_size <= self.max_page_size:
            raise ImproperlyConfiguredException("RegistryConfig needs 0 < default_page_size <= max_page_size")
        from litestar_registry.core.auth import check_keys

        ttl_key = {self.ttl_account: self.ttl_registration_key} if self.ttl_registration_key is not None else {}
        problems = check_keys(
            {
                ENV_PREFIX + "SERVICE_KEYS": self.service_keys,
                ENV_PREFIX + "ADMIN_KEYS": self.admin_keys,
                ENV_PREFIX + "TTL_REGISTRATION_KEY": ttl_key,
            }
        )
        if problems:
            raise ImproperlyConfiguredException("; ".join(problems))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> RegistryConfig:
        """Build a config from ``REGISTRY_*`` variables; keyword arguments win over the environment."""
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
        """``(variable, field, default)`` for every setting the environment can set (for the docs table)."""
        defaults = cls()
        return [
            (spec.metadata["env"], spec.name, _show(getattr(defaults, spec.name)))
            for spec in fields(cls)
            if "env" in spec.metadata
        ]


def _parse(name: str, raw: str, annotation: str) -> Any:
    """Convert ``raw`` to the field's declared type (the annotation's text: the module uses postponed annotations)."""
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
        if kind in {"int", "float"}:
            return int(text) if kind == "int" else float(text)
        if kind.startswith(("frozenset", "Sequence")):
            items = (item.strip() for item in text.split(",") if item.strip())
            return frozenset(items) if kind.startswith("frozenset") else tuple(items)
        if kind.startswith("Mapping"):
            accounts: dict[str, list[str]] = {}
            for item in filter(str.strip, text.split(",")):
                account, separator, key = item.partition("=")
                if not separator or not account.strip() or not key.strip():
                    raise ValueError("expected account=key")
                accounts.setdefault(account.strip(), []).append(key.strip())
            return {account: keys[0] if len(keys) == 1 else tuple(keys) for account, keys in accounts.items()}
    except ValueError as exc:
        shown = "(masked)" if name.endswith(("_KEYS", "_KEY")) else repr(raw)
        raise ImproperlyConfiguredException(f"{name}={shown} is not a valid value") from exc
    return text


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(value) or "(empty)"
    if isinstance(value, frozenset | Mapping):
        return "(empty)" if not value else repr(value)
    return repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
