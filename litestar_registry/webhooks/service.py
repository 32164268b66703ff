"""Webhooks inside the plugin: the engine and the relay in the app lifespan, and where subscriptions live.

:class:`WebhookService` is built with the plugin and imports neither DBOS nor cryptography until it starts, so a host
without the ``workflows`` extra (or with webhooks off) pays nothing and the admin routes answer 501. Its lifespan has
two halves around provisioning's: :meth:`prepare` opens the read model and activates the engine before DBOS launches
(launching recovers pending deliveries at once), :meth:`open` joins the running DBOS and starts the relay.

Where subscriptions, deliveries and attempts live (``webhooks_database_url`` unset): beside the registry's records
in its SQL database, in memory beside the memory store (forgotten with it), and in a SQLite file of their own,
``registry-webhooks.db`` in the working directory, beside a Redis store (whose log the relay reads all the same).
DBOS's database follows the same rule (see :func:`~litestar_registry.durable.default_dbos_url`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

from litestar_registry.durable import DurableExecution
from litestar_registry.outbound.policy import OutboundURLPolicy, Resolver
from litestar_registry.webhooks import webhooks_available
from litestar_registry.webhooks.errors import WebhooksUnavailable

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.engine import URL

    from litestar_registry.config import RegistryConfig
    from litestar_registry.core.events import EventLog
    from litestar_registry.core.ports import ServiceStore
    from litestar_registry.core.registry import Registry
    from litestar_registry.provisioning.runtime import DBOSRuntime
    from litestar_registry.webhooks.engine import Sleep, WebhookEngine
    from litestar_registry.webhooks.relay import Relay
    from litestar_registry.webhooks.store.base import WebhookStore

__all__ = ("REDIS_DEFAULT_DATABASE", "WebhookService")

logger = logging.getLogger("litestar_registry.webhooks")

EXTRA = "litestar-registry[workflows]"
NOT_ENABLED = (
    f"webhooks are not enabled on this registry: its host sets REGISTRY_WEBHOOKS=true (webhooks=True), with the "
    f"{EXTRA} extra installed"
)
NO_EXTRA = f"webhooks need the 'workflows' extra, which is not installed: pip install '{EXTRA}'"
REDIS_DEFAULT_DATABASE = "sqlite+aiosqlite:///registry-webhooks.db"
"""Where subscriptions live beside a Redis store when ``webhooks_database_url`` is unset."""


class WebhookService:
    """The plugin's webhooks: prepared before DBOS launches, opened after, closed before the store."""

    def __init__(
        self, config: RegistryConfig, registry: Registry, store: ServiceStore, durable: DurableExecution | None = None
    ) -> None:
        self.config = config
        self.registry = registry
        self.store = store
        self.durable = durable if durable is not None else DurableExecution(config, registry)
        self.engine: WebhookEngine | None = None
        self.relay: Relay | None = None
        self.sleep: Sleep | None = None
        """The wait between attempts (tests make it instant); DBOS's durable sleep when unset. Set before startup."""
        self.transport: httpx.AsyncBaseTransport | None = None
        """An httpx transport for deliveries (tests); the network when unset. Set before startup."""
        self.resolver: Resolver | None = None
        """Name resolution for the URL policy (tests); the system's when unset. Set before startup."""
        self._read_model: WebhookStore | None = None
        self._runtime: DBOSRuntime | None = None
        self._ready: WebhookEngine | None = None

    @property
    def unavailable(self) -> str | None:
        """Why the webhook routes answer 501, or ``None`` when webhooks are configured and installed."""
        if not self.config.webhooks:
            return NOT_ENABLED
        if not webhooks_available():
            return NO_EXTRA
        return None

    def require(self) -> WebhookEngine:
        """The running engine; ``WebhooksUnavailable`` (501) when webhooks are off, not installed or down."""
        if self.engine is None:
            raise WebhooksUnavailable(self.unavailable or f"webhooks are not running here (needs {EXTRA})")
        return self.engine

    def wake(self) -> None:
        """Make the relay look at the log now (the change feed calls this when the log grows)."""
        if self.relay is not None:
            self.relay.wake()

    # Lifespan

    async def prepare(self) -> None:
        """Open the read model and activate the engine, before anything launches DBOS."""
        if self.unavailable is not None:
            if self.config.webhooks:
                logger.warning("litestar-registry: %s; the webhook routes answer 501", self.unavailable)
            return
        from litestar_registry.provisioning.crypto import CredentialCipher
        from litestar_registry.webhooks.engine import DeliverySettings, WebhookEngine
        from litestar_registry.webhooks.schedule import RetrySchedule

        config = self.config
        read_model, store_url = self._read_model_store()
        engine = WebhookEngine(
            store=read_model,
            log=cast("EventLog", self.store),
            cipher=CredentialCipher(list(config.webhooks_keys or config.provisioning_keys)),
            url_policy=OutboundURLPolicy(
                allow_loopback=config.webhooks_allow_loopback, allow_private=config.webhooks_allow_private
            ),
            settings=DeliverySettings(
                schedule=RetrySchedule(
                    delays=tuple(config.webhooks_retry_schedule), jitter=config.webhooks_retry_jitter
                ),
                timeout_seconds=config.webhooks_timeout_seconds,
                max_response_bytes=config.webhooks_max_response_bytes,
                rotation_grace_seconds=config.webhooks_rotation_grace_seconds,
            ),
            clock=config.clock,
            sleep=self.sleep,
            transport=self.transport,
            resolver=self.resolver,
        )
        self._runtime = self.durable.prepare(store_url)
        await read_model.open()
        self._read_model = read_model
        try:
            engine.activate()
        except BaseException:
            await self.close()
            raise
        self._ready = engine

    async def open(self) -> None:
        """Join DBOS (launching it unless provisioning did), resume what a crash kept from starting, start the relay."""
        engine, self._ready = self._ready, None
        if engine is None or self._runtime is None:
            return
        from litestar_registry.webhooks.relay import Relay

        try:
            await engine.open(self._runtime)
        except BaseException:
            await self.close()
            raise
        self.engine = engine
        self.relay = Relay(engine, engine.log, interval_seconds=self.config.webhooks_relay_interval_seconds)
        self.relay.start()
        logger.info("litestar-registry: webhooks relay the change log as executor %r", self.durable.executor_id)

    async def close(self) -> None:
        """Stop the relay and the engine (deliveries in flight stay pending in DBOS), release the read model."""
        relay, self.relay = self.relay, None
        engine, self.engine = self.engine, None
        ready, self._ready = self._ready, None
        try:
            if relay is not None:
                await relay.stop()
            if engine is not None:
                await engine.close()
            elif ready is not None:
                await ready.close()  # activated, never opened
        finally:
            read_model, self._read_model = self._read_model, None
            if read_model is not None:
                await read_model.close()

    def _read_model_store(self) -> tuple[WebhookStore, URL | None]:
        """The read model: ``webhooks_database_url``, else beside the registry's records (see the module docstring)."""
        from sqlalchemy import make_url

        from litestar_registry.store.memory import MemoryServiceStore
        from litestar_registry.webhooks.store import MemoryWebhookStore

        config = self.config
        engine = getattr(self.store, "engine", None)
        url = config.webhooks_database_url
        if url is None and engine is not None:
            from litestar_registry.webhooks.store.sqlalchemy import SQLAlchemyWebhookStore

            return SQLAlchemyWebhookStore(engine=engine), engine.url
        if url is None and isinstance(self.store, MemoryServiceStore):
            return MemoryWebhookStore(), None
        from litestar_registry.webhooks.store.sqlalchemy import SQLAlchemyWebhookStore

        url = url or REDIS_DEFAULT_DATABASE
        return SQLAlchemyWebhookStore(url, create_schema=config.create_schema), make_url(url)
