"""``RegistryConfig``: every setting of the plugin, from code or from ``REGISTRY_*`` environment variables."""

from __future__ import annotations

import base64
import binascii
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click
from litestar.exceptions import ImproperlyConfiguredException

from litestar_registry.core.auth import check_keys, check_tenants, mask
from litestar_registry.core.clock import Clock, SystemClock
from litestar_registry.core.registry import DependentsCheck
from litestar_registry.store import mask_url, store_url_problem
from litestar_registry.wakeup import wakeup_url_problem

if TYPE_CHECKING:
    from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
    from litestar.types import Guard

    from litestar_registry.core.auth import Authenticator
    from litestar_registry.provisioning.definitions import WorkflowDefinition
    from litestar_registry.store.base import ServiceStore

__all__ = ("ENV_PREFIX", "DependentsCheck", "RegistryConfig", "RegistryConfigurationError")

ENV_PREFIX = "REGISTRY_"


class RegistryConfigurationError(ImproperlyConfiguredException, click.ClickException):
    """Settings the registry cannot start with, in one line: each variable, what it expects, and the value.

    Key values are masked, and so is the password of a store URL. It is also a :class:`click.ClickException`, so
    that a command line built on click (``litestar run``, ``litestar registry ...``, ``uvicorn``) prints it as one
    line, ``Error: ...``, and exits with status 1 instead of printing a traceback.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        message = "litestar-registry configuration: " + "; ".join(self.problems)
        ImproperlyConfiguredException.__init__(self, message)
        click.ClickException.__init__(self, message)

    def __str__(self) -> str:
        return self.message


def _env(name: str, *, secret: bool = False) -> dict[str, Any]:
    """Field metadata naming the environment variable that sets the field, and whether its value is a secret."""
    return {"env": ENV_PREFIX + name, "secret": secret}


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
    store_pool_size: int | None = field(default=None, metadata=_env("STORE_POOL_SIZE"))
    """Most connections the store keeps to its server. Unset: Redis 50, PostgreSQL 20, SQLite 5 (plus 10 overflow).
    Not for memory, nor for an engine borrowed through ``sqlalchemy_config``."""
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

    service_keys: Mapping[str, str | Sequence[str]] = field(
        default_factory=dict, metadata=_env("SERVICE_KEYS", secret=True)
    )
    """Service accounts and their keys: ``{account: key}``, or ``{account: [key, ...]}`` while rotating. From the
    environment: ``account=key,account2=key2`` (an account named twice gets both keys). Keys have at least 16
    characters of visible ASCII, no spaces or commas, and no key belongs to two accounts or roles."""
    admin_keys: Mapping[str, str | Sequence[str]] = field(
        default_factory=dict, metadata=_env("ADMIN_KEYS", secret=True)
    )
    """Admin accounts, same shape as ``service_keys``."""
    tenant_keys: Mapping[str, str | Sequence[str]] = field(
        default_factory=dict, metadata=_env("TENANT_KEYS", secret=True)
    )
    """Tenant keys, ``{tenant: key}`` (from the environment ``tenant=key,...``), same rules as ``service_keys``. A
    tenant key authenticates as the service account named after its tenant, with that tenant: only such callers may
    use the provisioning routes, each seeing its own tenant's workflows. A tenant is named unlike every service and
    admin account."""
    auto_approve_accounts: frozenset[str] = field(default=frozenset(), metadata=_env("AUTO_APPROVE_ACCOUNTS"))
    """Accounts whose new services start active; others start pending until an admin approves them."""
    auto_approve_slugs: frozenset[str] = field(default=frozenset(), metadata=_env("AUTO_APPROVE_SLUGS"))
    """Slugs that start active whoever registers them."""
    auto_approve_all: bool = field(default=False, metadata=_env("AUTO_APPROVE_ALL"))
    """Approve every new service (closed networks, development)."""
    public_reads: bool = field(default=False, metadata=_env("PUBLIC_READS"))
    """Let unauthenticated callers list and discover services."""
    dev_mode: bool = field(default=False, metadata=_env("DEV_MODE"))
    """Honour ``X-Dev-Account`` / ``X-Dev-Role`` headers instead of keys: anyone may act as anyone, admin included.
    Never in production; every start logs a warning while it is on."""
    authenticator: Authenticator | None = None
    """Replaces the key-based authenticator (JWT/JWKS, say) (code only)."""
    dependents_check: DependentsCheck | None = None
    """Reports a service's active dependents; deregistration is refused while it names any (code only)."""

    max_body_bytes: int = field(default=65_536, metadata=_env("MAX_BODY_BYTES"))
    """Largest request body, in bytes, the registry routes (both dialects) accept; larger ones answer 413."""
    default_page_size: int = field(default=50, metadata=_env("DEFAULT_PAGE_SIZE"))
    """Services per page when the caller does not say."""
    max_page_size: int = field(default=500, metadata=_env("MAX_PAGE_SIZE"))
    """Most services per page."""
    history_limit: int = field(default=100, metadata=_env("HISTORY_LIMIT"))
    """Most version-history entries kept per service; recording one more drops the oldest."""
    events_retention_seconds: float = field(default=604_800.0, metadata=_env("EVENTS_RETENTION_SECONDS"))
    """How long the change log keeps an event (default 7 days); the sweeper drops older ones at every sweep."""
    events_retention_count: int = field(default=100_000, metadata=_env("EVENTS_RETENTION_COUNT"))
    """Most events the change log keeps, the newest; the sweeper drops the rest at every sweep."""

    ttl_path: str = field(default="/v2/services", metadata=_env("TTL_PATH"))
    """Where the TTL dialect (seed 004: ``$register``, ``$ping``) is mounted; empty to leave it out."""
    ttl_registration_key: str | None = field(default=None, metadata=_env("TTL_REGISTRATION_KEY", secret=True))
    """The ``X-Service-Key`` the TTL dialect's writes need (missing: 422, wrong: 401). Unset, its writes answer 401
    unless ``ttl_open`` is on, and every start logs a warning saying how to key or open it."""
    ttl_open: bool = field(default=False, metadata=_env("TTL_OPEN"))
    """Let anyone register, ping and delete through the TTL dialect without a key (closed networks, development).
    Off by default; contradicts a ``ttl_registration_key``. Every start logs a warning while it is on."""
    ttl_seconds: float | None = field(default=None, metadata=_env("TTL_SECONDS"))
    """The TTL of services registered through the TTL dialect; unset takes ``default_ttl_seconds``."""
    ttl_expiry_windows: int = field(default=1, metadata=_env("TTL_EXPIRY_WINDOWS"))
    """Windows a TTL-dialect service may miss: 1 means silent past its TTL is gone (seed 004)."""
    ttl_account: str = field(default="servicekit", metadata=_env("TTL_ACCOUNT"))
    """The account that owns services registered through the TTL dialect (they are approved at once)."""

    provisioning: bool = field(default=False, metadata=_env("PROVISIONING"))
    """Run provisioning workflows (needs the ``litestar-registry[workflows]`` extra, ``provisioning_keys`` and
    ``provisioning_callback_base_url``). Off, or without the extra, the provisioning routes answer 501."""
    provisioning_callback_base_url: str | None = field(default=None, metadata=_env("PROVISIONING_CALLBACK_BASE_URL"))
    """The public origin external services reach this app at (``https://registry.example.com``): a callback step
    sends them ``{this}{path}/provisioning/callback`` to call back."""
    provisioning_keys: Sequence[str] = field(default=(), metadata=_env("PROVISIONING_KEYS", secret=True))
    """Fernet keys (urlsafe base64 of 32 bytes, as ``Fernet.generate_key()`` makes them) that encrypt the credentials
    callbacks deliver. The first encrypts, every one decrypts: put a new key first to rotate, and drop the old one
    once nothing sealed with it is needed."""
    provisioning_dbos_url: str | None = field(default=None, metadata=_env("PROVISIONING_DBOS_URL"))
    """DBOS's system database (``sqlite:///path`` or ``postgresql://...``), for provisioning and webhooks alike.
    Unset: a SQLite file beside a SQLite store's (``registry.db`` gets ``registry-dbos.sqlite``), the store's own
    database when it is PostgreSQL (DBOS keeps its tables in schema ``dbos``), a temporary file for the memory store;
    beside a Redis store, the same beside ``webhooks_database_url``."""
    provisioning_application_version: str = field(default="1", metadata=_env("PROVISIONING_APPLICATION_VERSION"))
    """DBOS recovers only workflows started under its own version: change it only when the workflows in flight may
    be abandoned (or drained first)."""
    provisioning_executor_id: str | None = field(default=None, metadata=_env("PROVISIONING_EXECUTOR_ID"))
    """This instance's DBOS executor id. Unset: ``local`` with a SQLite DBOS database (one instance, which recovers
    its own workflows when it restarts); with PostgreSQL, the host name and a random suffix, new at every start (a
    survivor recovers what a dead instance left once its registration expires). Set a stable id per instance (a pod
    name) to have a restarted instance recover its own workflows at once."""
    provisioning_instance_ttl_seconds: float = field(default=30.0, metadata=_env("PROVISIONING_INSTANCE_TTL_SECONDS"))
    """With a PostgreSQL DBOS database, each instance registers itself (slug ``registry-executor-...``) and pings
    every third of this; silent for this long, it expires and the instance whose sweep expires it recovers its
    workflows."""
    provisioning_allow_loopback: bool = field(default=False, metadata=_env("PROVISIONING_ALLOW_LOOPBACK"))
    """Let HTTP and callback steps call loopback addresses (127.0.0.0/8, ::1): demos on one machine."""
    provisioning_allow_private: bool = field(default=False, metadata=_env("PROVISIONING_ALLOW_PRIVATE"))
    """Let HTTP and callback steps call private and other non-global addresses (RFC 1918, CGNAT, unique-local)."""
    provisioning_definitions: Sequence[WorkflowDefinition] = ()
    """The workflow definitions tenants may start, by name (code only); a duplicate name is refused."""

    webhooks: bool = field(default=False, metadata=_env("WEBHOOKS"))
    """Deliver the change log to webhook subscriptions, signed per Standard Webhooks v1 (needs the
    ``litestar-registry[workflows]`` extra and a Fernet key: ``webhooks_keys``, else ``provisioning_keys``). Off, or
    without the extra, the webhook admin routes answer 501."""
    webhooks_keys: Sequence[str] = field(default=(), metadata=_env("WEBHOOKS_KEYS", secret=True))
    """Fernet keys that encrypt the subscriptions' signing secrets at rest (the first encrypts, every one decrypts).
    Unset: ``provisioning_keys``."""
    webhooks_database_url: str | None = field(default=None, metadata=_env("WEBHOOKS_DATABASE_URL"))
    """Where subscriptions, deliveries and attempts live (a SQLAlchemy async URL). Unset: the registry's own database
    when the store is SQL, memory beside the memory store, and ``sqlite+aiosqlite:///registry-webhooks.db`` beside a
    Redis store. DBOS's database defaults to a sibling of this one (see ``provisioning_dbos_url``)."""
    webhooks_timeout_seconds: float = field(default=15.0, metadata=_env("WEBHOOKS_TIMEOUT_SECONDS"))
    """An attempt succeeds only with a 2xx answer within this time, connection included; a slower one failed."""
    webhooks_retry_schedule: Sequence[float] = field(
        default=(0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0),
        metadata=_env("WEBHOOKS_RETRY_SCHEDULE"),
    )
    """Seconds before each attempt: the first before the first attempt, each next one after a failure; after the last
    attempt fails, the delivery is dead. ``Retry-After`` raises a delay, up to the longest one."""
    webhooks_retry_jitter: float = field(default=0.1, metadata=_env("WEBHOOKS_RETRY_JITTER"))
    """Each delay is scaled by a factor within ``1 ± jitter`` (from 0 to below 1), the same on every replay."""
    webhooks_max_response_bytes: int = field(default=65_536, metadata=_env("WEBHOOKS_MAX_RESPONSE_BYTES"))
    """Most bytes of a subscriber's answer read; the rest is never read."""
    webhooks_allow_loopback: bool = field(default=False, metadata=_env("WEBHOOKS_ALLOW_LOOPBACK"))
    """Let subscriptions target loopback addresses (127.0.0.0/8, ::1): demos and tests on one machine."""
    webhooks_allow_private: bool = field(default=False, metadata=_env("WEBHOOKS_ALLOW_PRIVATE"))
    """Let subscriptions target private and other non-global addresses (RFC 1918, CGNAT, unique-local)."""
    webhooks_relay_interval_seconds: float = field(default=1.0, metadata=_env("WEBHOOKS_RELAY_INTERVAL_SECONDS"))
    """How often each instance's relay looks for new events in the log (the change feed wakes it sooner)."""
    webhooks_rotation_grace_seconds: float = field(default=86_400.0, metadata=_env("WEBHOOKS_ROTATION_GRACE_SECONDS"))
    """After a secret rotation, how long the old secret keeps signing deliveries beside the new one (0: not at all).
    An admin may choose another grace per rotation."""
    feed_channels: bool = field(default=True, metadata=_env("FEED_CHANNELS"))
    """Wake the change feed's watchers (streams, long polls) across app instances through Litestar's channels. Off,
    each instance sees the others' changes at its next poll of the change log only."""
    feed_channels_url: str | None = field(default=None, metadata=_env("FEED_CHANNELS_URL"))
    """Where the wake-ups travel: a ``redis://`` / ``valkey://`` or ``postgresql://`` URL. Unset: the store's own
    server when it is Redis or PostgreSQL; a SQLite or memory store has none, and the feed polls only."""
    feed_poll_interval_seconds: float = field(default=1.0, metadata=_env("FEED_POLL_INTERVAL_SECONDS"))
    """How often an instance reads the change log while anyone watches it, whatever the wake-ups say: the longest a
    watcher waits for a change no wake-up announced."""
    feed_ping_interval_seconds: float = field(default=15.0, metadata=_env("FEED_PING_INTERVAL_SECONDS"))
    """Seconds without an event after which the event stream sends a comment (``: ping``), so that proxies keep
    it open."""
    feed_stream_max_seconds: float | None = field(default=None, metadata=_env("FEED_STREAM_MAX_SECONDS"))
    """End each event stream after this long; its client reconnects with ``Last-Event-ID`` and misses nothing. Set it
    to spread long-lived streams over new app instances, or so that a server's graceful shutdown (``uvicorn
    --timeout-graceful-shutdown``) need not cut them. Unset: a stream lasts as long as its client stays."""
    feed_max_wait_seconds: float = field(default=300.0, metadata=_env("FEED_MAX_WAIT_SECONDS"))
    """The longest a long poll (``?index=...&wait=...``) waits for a change; a longer ``wait`` is cut to it, and a
    long poll without ``wait`` waits this long."""

    clock: Clock = field(default_factory=SystemClock)
    """Where time comes from; tests pass a ``ManualClock`` (code only)."""

    def __post_init__(self) -> None:
        if problems := self._problems():
            raise RegistryConfigurationError(problems)

    def _problems(self) -> list[str]:
        """Every setting that is wrong, each as ``VARIABLE (field): expected ..., got <value>``; keys masked."""
        problems: list[str] = []

        def bad(name: str, expected: str, value: Any) -> None:
            problems.append(f"{_label(name)}: expected {expected}, got {_shown(name, value)}")

        if not isinstance(self.path, str) or not self.path.startswith("/"):
            bad("path", "a path that starts with '/'", self.path)
        if not isinstance(self.ttl_path, str) or (self.ttl_path and not self.ttl_path.startswith("/")):
            bad("ttl_path", "a path that starts with '/', or nothing to leave the TTL dialect out", self.ttl_path)
        if self.store is None and self.sqlalchemy_config is None and (problem := store_url_problem(self.store_url)):
            problems.append(f"{_label('store_url')}: {problem}, got {_shown('store_url', self.store_url)}")
        numbers_ok = True
        for name in _POSITIVE_NUMBERS:
            value = getattr(self, name)
            if value is None and name in ("ttl_seconds", "feed_stream_max_seconds"):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                bad(name, "a finite number of seconds > 0", value)
                numbers_ok = False
        for name in _POSITIVE_INTEGERS:
            value = getattr(self, name)
            if value is None and name == "store_pool_size":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                bad(name, "a whole number >= 1", value)
                numbers_ok = False
        if numbers_ok:
            low, high = self.min_ttl_seconds, self.max_ttl_seconds
            if low > high:
                bad("min_ttl_seconds", f"at most {_ref('max_ttl_seconds', high)}", low)
            else:
                span = f"seconds from {_ref('min_ttl_seconds', low)} to {_ref('max_ttl_seconds', high)}"
                for name in ("default_ttl_seconds", "ttl_seconds", "provisioning_instance_ttl_seconds"):
                    value = getattr(self, name)
                    if value is not None and not low <= value <= high:
                        bad(name, span, value)
            if self.default_page_size > self.max_page_size:
                bad("default_page_size", f"at most {_ref('max_page_size', self.max_page_size)}", self.default_page_size)
        if not isinstance(self.ttl_account, str) or not self.ttl_account.strip():
            bad("ttl_account", "an account name", self.ttl_account)
        if self.ttl_open and self.ttl_registration_key is not None:
            bad("ttl_open", f"false while {_ref('ttl_registration_key')} is set (a keyed dialect is not open)", True)
        ttl_key = {self.ttl_account: self.ttl_registration_key} if self.ttl_registration_key is not None else {}
        problems += check_keys(
            {
                _label("service_keys"): self.service_keys,
                _label("admin_keys"): self.admin_keys,
                _label("tenant_keys"): self.tenant_keys,
                _label("ttl_registration_key"): ttl_key,
                _label("provisioning_keys"): {
                    f"key {index + 1}": key for index, key in enumerate(_keys(self.provisioning_keys))
                },
            }
        )
        problems += check_tenants(
            self.tenant_keys, {**self.service_keys, **self.admin_keys}, _label("tenant_keys") + " tenant"
        )
        problems += self._provisioning_problems()
        if self.feed_channels_url is not None and (problem := wakeup_url_problem(self.feed_channels_url)):
            bad("feed_channels_url", problem.removeprefix("expected "), self.feed_channels_url)
        problems += self._webhook_problems()
        return problems

    def _webhook_problems(self) -> list[str]:
        """What keeps webhooks from running with these settings (keys, schedule, URL)."""
        from litestar_registry.webhooks.schedule import schedule_problem

        problems: list[str] = []

        def bad(name: str, expected: str, value: Any) -> None:
            problems.append(f"{_label(name)}: expected {expected}, got {_shown(name, value)}")

        problems += check_keys(
            {_label("webhooks_keys"): {f"key {index + 1}": key for index, key in enumerate(_keys(self.webhooks_keys))}}
        )
        for index, key in enumerate(_keys(self.webhooks_keys)):
            if not _is_fernet_key(key):
                problems.append(
                    f"{_label('webhooks_keys')} key {index + 1}: expected a Fernet key (urlsafe base64 of 32 bytes), "
                    f"got {mask(key)}"
                )
        if (problem := schedule_problem(self.webhooks_retry_schedule, 0.0)) is not None:
            bad("webhooks_retry_schedule", problem.removeprefix("expected "), self.webhooks_retry_schedule)
        if (problem := schedule_problem((0.0,), self.webhooks_retry_jitter)) is not None:
            bad("webhooks_retry_jitter", problem.removeprefix("expected "), self.webhooks_retry_jitter)
        grace = self.webhooks_rotation_grace_seconds
        if isinstance(grace, bool) or not isinstance(grace, int | float) or not 0 <= grace <= 30 * 86_400:
            bad("webhooks_rotation_grace_seconds", "seconds from 0 to 2592000 (30 days)", grace)
        url = self.webhooks_database_url
        if url is not None and (
            store_url_problem(url) is not None
            or not url.lower().startswith(("sqlite+aiosqlite:", "postgresql+asyncpg:"))
        ):
            bad("webhooks_database_url", "sqlite+aiosqlite:///path or postgresql+asyncpg://user:password@host/db", url)
        if self.webhooks and not (self.webhooks_keys or self.provisioning_keys):
            problems.append(
                f"{_label('webhooks_keys')}: expected at least one Fernet key while webhooks are on (or "
                f"{_ref('provisioning_keys')}), got nothing (make one with: python -c 'from cryptography.fernet "
                "import Fernet; print(Fernet.generate_key().decode())')"
            )
        return problems

    def _provisioning_problems(self) -> list[str]:
        """What keeps provisioning from running with these settings (only checked when it is on)."""
        problems: list[str] = []

        def bad(name: str, expected: str, value: Any) -> None:
            problems.append(f"{_label(name)}: expected {expected}, got {_shown(name, value)}")

        base = self.provisioning_callback_base_url
        if base is not None and not _is_origin(base):
            bad("provisioning_callback_base_url", "an http(s) URL such as https://registry.example.com", base)
        for index, key in enumerate(_keys(self.provisioning_keys)):
            if not _is_fernet_key(key):
                problems.append(
                    f"{_label('provisioning_keys')} key {index + 1}: expected a Fernet key (urlsafe base64 of 32 "
                    f"bytes), got {mask(key)}"
                )
        dbos_url = self.provisioning_dbos_url
        if dbos_url is not None and not dbos_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            bad("provisioning_dbos_url", "sqlite:///path or postgresql://user:password@host/database", dbos_url)
        for name in ("provisioning_application_version", "provisioning_executor_id"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip() or not value.isprintable()):
                bad(name, "a non-empty name of printable characters", value)
        if not self.provisioning:
            return problems
        if base is None:
            bad("provisioning_callback_base_url", "the public URL that external services call back", base)
        if not self.provisioning_keys:
            problems.append(
                f"{_label('provisioning_keys')}: expected at least one Fernet key while provisioning is on, got "
                "nothing (make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')"
            )
        if self.store is None and self.sqlalchemy_config is None and self.store_url.lower().startswith(_REDIS_FORMS):
            bad("store_url", "a SQL or memory store while provisioning is on (its records live in SQL)", self.store_url)
        return problems

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> RegistryConfig:
        """Build a config from ``REGISTRY_*`` variables; keyword arguments win over the environment.

        Raises:
            RegistryConfigurationError: a variable does not parse, or the settings do not hold together; the one-line
                message names every such variable, the form it expects and its value (keys masked).
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[str] = []
        for spec in fields(cls):
            name = spec.metadata.get("env")
            if name is None or name not in environ or spec.name in overrides:
                continue
            try:
                values[spec.name] = _parse(environ[name], str(spec.type))
            except ValueError as exc:
                problems.append(f"{_label(spec.name)}: expected {exc}, got {_shown(spec.name, environ[name])}")
        if problems:
            raise RegistryConfigurationError(problems)
        return cls(**values, **overrides)

    def to_env(self, *, show_secrets: bool = False) -> list[tuple[str, str, bool]]:
        """``(variable, value, masked)`` for every setting the environment can set, as :meth:`from_env` reads it back.

        Unless ``show_secrets``, a secret (a key, the store URL's password) is masked and ``masked`` is true: such a
        value does not read back as it was.
        """
        items = []
        for spec in fields(self):
            if "env" not in spec.metadata:
                continue
            value = getattr(self, spec.name)
            text = _format(value)
            shown = text if show_secrets else _shown(spec.name, value, quoted=False)
            items.append((spec.metadata["env"], shown, shown != text))
        return items

    @classmethod
    def environment_variables(cls) -> list[tuple[str, str, str]]:
        """``(variable, field, default)`` for every setting the environment can set (for the docs table).

        The default is written as the variable would hold it: ``true``, ``30.0``, ``a,b``; empty for none.
        """
        return [(variable, _field_of(variable), value) for variable, value, _ in cls().to_env()]


_POSITIVE_NUMBERS = (
    "default_ttl_seconds",
    "min_ttl_seconds",
    "max_ttl_seconds",
    "sweep_interval_seconds",
    "ttl_seconds",
    "provisioning_instance_ttl_seconds",
    "webhooks_timeout_seconds",
    "webhooks_relay_interval_seconds",
    "events_retention_seconds",
    "feed_poll_interval_seconds",
    "feed_ping_interval_seconds",
    "feed_max_wait_seconds",
    "feed_stream_max_seconds",
)
"""Float settings: finite and above zero (``ttl_seconds`` may also be unset)."""
_POSITIVE_INTEGERS = (
    "expiry_windows",
    "history_limit",
    "events_retention_count",
    "sweep_batch_size",
    "max_body_bytes",
    "default_page_size",
    "max_page_size",
    "ttl_expiry_windows",
    "store_pool_size",
    "webhooks_max_response_bytes",
)
"""Whole-number settings: one or more (``store_pool_size`` may also be unset)."""
_FIELDS = {spec.name: spec for spec in fields(RegistryConfig)}


_REDIS_FORMS = ("redis://", "rediss://", "valkey://", "valkeys://", "unix://")


def _is_origin(url: Any) -> bool:
    """Whether ``url`` is an absolute http(s) URL with a host (a path is allowed, a query is not)."""
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query and not parts.fragment


def _is_fernet_key(key: Any) -> bool:
    """Whether ``key`` is what ``cryptography.fernet.Fernet`` takes, checked without importing cryptography."""
    if not isinstance(key, str):
        return False
    try:
        return len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32
    except (ValueError, binascii.Error):
        return False


def _label(name: str) -> str:
    """How a message names a setting: its variable and its field, or the field alone for a code-only one."""
    variable = _FIELDS[name].metadata.get("env")
    return f"{variable} ({name})" if variable else f"RegistryConfig.{name}"


def _ref(name: str, value: Any = None) -> str:
    """How a message refers to another setting: ``VARIABLE=value``, or the variable alone."""
    variable = _FIELDS[name].metadata.get("env") or f"RegistryConfig.{name}"
    return variable if value is None else f"{variable}={_format(value)}"


def _field_of(variable: str) -> str:
    return next(name for name, spec in _FIELDS.items() if spec.metadata.get("env") == variable)


def _shown(name: str, value: Any, *, quoted: bool = True) -> str:
    """``value`` of setting ``name`` as a message (``quoted``) or a listing shows it: keys masked, URL passwords too."""
    if name in ("store_url", "provisioning_dbos_url", "webhooks_database_url", "feed_channels_url") and isinstance(
        value, str
    ):
        text = mask_url(value)
    elif _FIELDS[name].metadata.get("secret") and value and isinstance(value, Mapping):
        text = ",".join(f"{account}={mask(key)}" for account, keys in value.items() for key in _keys(keys))
    elif _FIELDS[name].metadata.get("secret") and value and isinstance(value, list | tuple):
        text = ",".join(mask(str(key)) for key in value)
    elif _FIELDS[name].metadata.get("secret") and value:
        text = mask(str(value))
    else:
        text = _format(value)
    if quoted and (isinstance(value, str | Mapping) or value is None):
        return repr(text) if value is not None else "nothing"
    return text


def _keys(keys: str | Sequence[str]) -> tuple[str, ...]:
    return (keys,) if isinstance(keys, str) else tuple(keys)


def _format(value: Any) -> str:
    """``value`` as a ``REGISTRY_*`` variable holds it, so that :func:`_parse` reads it back; empty for none."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Mapping):
        return ",".join(f"{account}={key}" for account, keys in value.items() for key in _keys(keys))
    if isinstance(value, frozenset | set):
        return ",".join(sorted(value))
    if isinstance(value, Sequence):
        return ",".join(_format(item) if isinstance(item, int | float) else item for item in value)
    return str(value)


def _parse(raw: str, annotation: str) -> Any:
    """Convert ``raw`` to the field's declared type (the annotation's text: the module uses postponed annotations).

    Raises:
        ValueError: ``raw`` does not parse; the message is the form expected, without the value.
    """
    text = raw.strip()
    kind, optional = annotation.removesuffix(" | None"), annotation.endswith(" | None")
    if optional and not text:
        return None
    if kind == "bool":
        if text.lower() in {"1", "true", "yes", "on"}:
            return True
        if text.lower() in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError("true or false (also 1/0, yes/no, on/off)")
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError("a whole number") from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError("a number") from None
    if kind == "Sequence[float]":
        try:
            return tuple(float(item) for item in text.split(",") if item.strip())
        except ValueError:
            raise ValueError("numbers, comma-separated") from None
    if kind.startswith(("frozenset", "Sequence")):
        items = (item.strip() for item in text.split(",") if item.strip())
        return frozenset(items) if kind.startswith("frozenset") else tuple(items)
    if kind.startswith("Mapping"):
        accounts: dict[str, list[str]] = {}
        for item in filter(str.strip, text.split(",")):
            account, separator, key = item.partition("=")
            if not separator or not account.strip() or not key.strip():
                raise ValueError("account=key, comma-separated")
            accounts.setdefault(account.strip(), []).append(key.strip())
        return {account: keys[0] if len(keys) == 1 else tuple(keys) for account, keys in accounts.items()}
    return text
