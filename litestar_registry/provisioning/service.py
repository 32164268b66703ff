"""Provisioning inside the plugin: the engine's lifecycle in the app lifespan, and its hooks into the registry.

:class:`ProvisioningService` is built with the plugin and imports neither DBOS nor cryptography until it opens, so a
host without the ``workflows`` extra (or with provisioning off) pays nothing and its routes answer 501. Once open it
gives the routes their :class:`~litestar_registry.provisioning.engine.ProvisioningEngine`, the registry its
dependents check (running and waiting workflows keep a service from being deregistered), and the engine the services'
``provisioning`` endpoints. DBOS itself, and this instance's registration in its own registry, belong to the plugin's
:class:`~litestar_registry.durable.DurableExecution`, which webhooks share.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from litestar_registry.core.errors import ServiceNotFound
from litestar_registry.durable import DurableExecution, default_dbos_url
from litestar_registry.outbound.policy import OutboundURLPolicy
from litestar_registry.provisioning import workflows_available
from litestar_registry.provisioning.definitions import DefinitionRegistry
from litestar_registry.provisioning.errors import ProvisioningUnavailable

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from litestar_registry.config import RegistryConfig
    from litestar_registry.core.ports import ServiceStore
    from litestar_registry.core.registry import Registry
    from litestar_registry.provisioning.engine import ProvisioningEngine
    from litestar_registry.provisioning.store.base import ProvisioningStore

__all__ = ("ProvisioningService", "callback_url", "default_dbos_url")

logger = logging.getLogger("litestar_registry.provisioning")

EXTRA = "litestar-registry[workflows]"
NOT_ENABLED = (
    f"provisioning is not enabled on this registry: its host sets REGISTRY_PROVISIONING=true (provisioning=True), "
    f"with the {EXTRA} extra installed"
)
NO_EXTRA = f"provisioning workflows need the 'workflows' extra, which is not installed: pip install '{EXTRA}'"


def callback_url(base_url: str, path: str) -> str:
    """The public URL of ``POST {path}/provisioning/callback`` on the app at ``base_url``."""
    return f"{base_url.rstrip('/')}{path.rstrip('/')}/provisioning/callback"


class ProvisioningService:
    """The plugin's provisioning: opened after the registry's store, closed before it."""

    def __init__(
        self, config: RegistryConfig, registry: Registry, store: ServiceStore, durable: DurableExecution | None = None
    ) -> None:
        """Check the definitions at once (a broken DAG stops the app before it serves); nothing runs before open.

        ``durable`` is the plugin's DBOS runtime, shared with webhooks (one of its own when not given).
        """
        self.config = config
        self.registry = registry
        self.store = store
        self.durable = durable if durable is not None else DurableExecution(config, registry)
        self.definitions = DefinitionRegistry(config.provisioning_definitions)
        self.engine: ProvisioningEngine | None = None
        self._read_model: ProvisioningStore | None = None

    @property
    def executor_id(self) -> str | None:
        """The DBOS executor this instance runs workflows under (once DBOS was prepared)."""
        executor: str | None = self.durable.executor_id
        return executor

    @property
    def shared(self) -> bool:
        """Whether DBOS's database is shared by several instances (PostgreSQL): they then register themselves."""
        return bool(self.durable.shared)

    @property
    def unavailable(self) -> str | None:
        """Why the provisioning routes answer 501, or ``None`` when provisioning is configured and installed."""
        if not self.config.provisioning:
            return NOT_ENABLED
        if not workflows_available():
            return NO_EXTRA
        return None

    def require(self) -> ProvisioningEngine:
        """The running engine; ``ProvisioningUnavailable`` (501) when provisioning is off, not installed or down."""
        if self.engine is None:
            raise ProvisioningUnavailable(self.unavailable or f"provisioning is not running here (needs {EXTRA})")
        return self.engine

    # Lifespan

    async def open(self) -> None:
        """Start the engine on the app's loop; the plugin then joins the instances (:meth:`DurableExecution.join`).

        Starting DBOS (unless another user launched it already) recovers this executor's workflows.
        """
        if self.unavailable is not None:
            if self.config.provisioning:
                logger.warning("litestar-registry: %s; the provisioning routes answer 501", self.unavailable)
            return
        from litestar_registry.provisioning.crypto import CredentialCipher
        from litestar_registry.provisioning.engine import ProvisioningEngine

        config = self.config
        assert config.provisioning_callback_base_url is not None  # the config refuses provisioning without it
        read_model, store_url = self._read_model_store()
        engine = ProvisioningEngine(
            definitions=self.definitions,
            store=read_model,
            cipher=CredentialCipher(list(config.provisioning_keys)),
            callback_url=callback_url(config.provisioning_callback_base_url, config.path),
            url_policy=OutboundURLPolicy(
                allow_loopback=config.provisioning_allow_loopback, allow_private=config.provisioning_allow_private
            ),
            services=self,
            clock=config.clock,
        )
        runtime = self.durable.prepare(store_url)
        await read_model.open()
        self._read_model = read_model
        try:
            await engine.open(runtime)
            self.engine = engine
        except BaseException:
            await self.close()
            raise
        logger.info(
            "litestar-registry: provisioning runs as executor %r, %d definition(s)",
            self.executor_id,
            len(self.definitions.names()),
        )

    async def close(self) -> None:
        """Stop the engine (its workflows stay pending in DBOS, for the next start or a survivor), release the rest."""
        engine, self.engine = self.engine, None
        try:
            if engine is not None:
                await engine.close()
        finally:
            read_model, self._read_model = self._read_model, None
            if read_model is not None:
                await read_model.close()

    def _read_model_store(self) -> tuple[ProvisioningStore, URL | None]:
        """The read model beside the registry's records: the same SQL engine, or memory beside a memory store.

        Either way the workflow topics join the registry store's change log (one sequence of ids), and the registry's
        ``on_events`` hook is awaited after they are appended. A Redis store is refused: the read model and the
        events it appends with its changes need SQL transactions (or one process's memory).
        """
        from litestar_registry.provisioning.store import MemoryProvisioningStore
        from litestar_registry.store.memory import MemoryServiceStore

        engine = getattr(self.store, "engine", None)
        if engine is not None:
            from litestar_registry.provisioning.store.sqlalchemy import SQLAlchemyProvisioningStore

            return SQLAlchemyProvisioningStore(engine=engine, on_events=self._events_appended), engine.url
        if isinstance(self.store, MemoryServiceStore):
            return MemoryProvisioningStore(self.store, on_events=self._events_appended), None
        raise ProvisioningUnavailable(
            f"provisioning keeps its records in SQL (or memory), not in a {type(self.store).__name__}"
        )

    # Hooks into the registry

    async def dependents(self, slug: str) -> list[str]:
        """The registry's dependents check: workflows still at work for ``slug`` keep it from being deregistered."""
        engine = self.engine
        if engine is None:
            return []
        count = await engine.store.count_active(slug)
        return [f"provisioning: {count} active workflow(s)"] if count else []

    async def _events_appended(self) -> None:
        """The read model appended workflow events: wake the log's followers through the registry's own hook.

        Looked up at each call, so whatever the plugin wires into ``registry.on_events`` (the change feed, the
        webhook relay), also after this service was built, wakes up for workflow events as for service events.
        """
        if self.registry.on_events is not None:
            await self.registry.on_events()

    async def endpoint_url(self, service_slug: str, name: str) -> str | None:
        """Where a callback step notifies the service: its live registration's endpoint called ``name``."""
        try:
            record = await self.registry.get_live(service_slug)
        except ServiceNotFound:
            return None
        return next((endpoint.url for endpoint in record.endpoints if endpoint.name == name), None)
