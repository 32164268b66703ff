"""Provisioning inside the plugin: the engine's lifecycle in the app lifespan, and its hooks into the registry.

:class:`ProvisioningService` is built with the plugin and imports neither DBOS nor cryptography until it opens, so a
host without the ``workflows`` extra (or with provisioning off) pays nothing and its routes answer 501. Once open it
gives the routes their :class:`~litestar_registry.provisioning.engine.ProvisioningEngine`, the registry its
dependents check (running and waiting workflows keep a service from being deregistered), the engine the services'
``provisioning`` endpoints, and, with a PostgreSQL DBOS database, this instance's registration in its own registry
(see :mod:`.instances`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from litestar_registry.core.errors import ServiceNotFound
from litestar_registry.core.models import ServiceQuery, ServiceRecord, ServiceStatus
from litestar_registry.provisioning import workflows_available
from litestar_registry.provisioning.definitions import DefinitionRegistry
from litestar_registry.provisioning.errors import ProvisioningUnavailable
from litestar_registry.provisioning.instances import (
    EXECUTOR_SLUG_PREFIX,
    INSTANCE_PRINCIPAL,
    executor_registration,
    executor_slug,
    expired_executors,
    is_executor_slug,
)
from litestar_registry.provisioning.urlpolicy import OutboundURLPolicy

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


def default_dbos_url(store_url: URL | None) -> str | None:
    """DBOS's system database for a registry store at ``store_url``; ``None`` when it needs a temporary file.

    A SQLite store's file gets a sibling (``registry.db`` -> ``registry-dbos.sqlite``): DBOS's tables have generic
    names (``queues``) and its SQLite mode is for one process. A PostgreSQL store's database is shared with DBOS,
    which keeps its tables in a schema of its own (``dbos``), through psycopg.
    """
    if store_url is None:
        return None
    if store_url.get_backend_name() == "postgresql":
        return store_url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    database = store_url.database
    if store_url.get_backend_name() == "sqlite" and database and database != ":memory:":
        path = Path(database)
        return f"sqlite:///{path.with_name(f'{path.stem}-dbos.sqlite')}"
    return None


class ProvisioningService:
    """The plugin's provisioning: opened after the registry's store, closed before it."""

    def __init__(self, config: RegistryConfig, registry: Registry, store: ServiceStore) -> None:
        """Check the definitions at once (a broken DAG stops the app before it serves); nothing runs before open."""
        self.config = config
        self.registry = registry
        self.store = store
        self.definitions = DefinitionRegistry(config.provisioning_definitions)
        self.engine: ProvisioningEngine | None = None
        self.executor_id: str | None = None
        self.shared = False
        """Whether DBOS's database is shared by several instances (PostgreSQL): they then register themselves."""
        self._read_model: ProvisioningStore | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._temporary: str | None = None

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
        """Start the engine on the app's loop (DBOS recovers this executor's workflows), then join the instances."""
        if self.unavailable is not None:
            if self.config.provisioning:
                logger.warning("litestar-registry: %s; the provisioning routes answer 501", self.unavailable)
            return
        from litestar_registry.provisioning.crypto import CredentialCipher
        from litestar_registry.provisioning.engine import ProvisioningEngine
        from litestar_registry.provisioning.runtime import DBOSRuntime, DBOSSettings

        config = self.config
        assert config.provisioning_callback_base_url is not None  # the config refuses provisioning without it
        read_model, store_url = self._read_model_store()
        dbos_url = config.provisioning_dbos_url or default_dbos_url(store_url) or self._temporary_dbos_url()
        self.shared = dbos_url.startswith(("postgresql://", "postgres://"))
        self.executor_id = config.provisioning_executor_id or (
            f"{socket.gethostname()}-{secrets.token_hex(4)}" if self.shared else "local"
        )
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
        settings = DBOSSettings(
            system_database_url=dbos_url,
            application_version=config.provisioning_application_version,
            executor_id=self.executor_id,
        )
        await read_model.open()
        self._read_model = read_model
        try:
            await engine.open(DBOSRuntime(settings))
            self.engine = engine
            if self.shared:
                await self._register_instance()
                self._keepalive = asyncio.create_task(self._keep_alive(), name="litestar-registry-instance")
                await self._recover_expired()
        except BaseException:
            await self.close()
            raise
        logger.info(
            "litestar-registry: provisioning runs as executor %r, %d definition(s)",
            self.executor_id,
            len(self.definitions.names()),
        )

    async def close(self) -> None:
        """Stop pinging (a survivor takes over once the registration expires), stop the engine, release the rest.

        The instance's registration is left to expire rather than removed: its workflows still wait for callbacks,
        and only its expiry makes a survivor recover them.
        """
        task, self._keepalive = self._keepalive, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        engine, self.engine = self.engine, None
        try:
            if engine is not None:
                await engine.close()
        finally:
            read_model, self._read_model = self._read_model, None
            if read_model is not None:
                await read_model.close()
            if self._temporary is not None:
                shutil.rmtree(self._temporary, ignore_errors=True)
                self._temporary = None

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

    def _temporary_dbos_url(self) -> str:
        """A SQLite file in a directory removed at close: beside a store that forgets, DBOS forgets as well."""
        self._temporary = tempfile.mkdtemp(prefix="litestar-registry-dbos-")
        return f"sqlite:///{Path(self._temporary) / 'dbos.sqlite'}"

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

    async def on_sweep(self, changes: Sequence[tuple[ServiceRecord, ServiceRecord]]) -> None:
        """After a sweep: recover the workflows of every other instance whose registration it expired."""
        if self.engine is None or not self.shared:
            return
        for slug, executor in expired_executors(changes):
            if executor != self.executor_id:
                await self._recover(slug, executor)

    # This instance in the registry

    async def _register_instance(self) -> None:
        assert self.executor_id is not None
        config = self.config
        registration = executor_registration(
            self.executor_id,
            application_version=config.provisioning_application_version,
            ttl_seconds=config.provisioning_instance_ttl_seconds,
            base_url=config.provisioning_callback_base_url,
        )
        await self.registry.upsert(registration, INSTANCE_PRINCIPAL)

    async def _keep_alive(self) -> None:
        """Ping this instance's registration every third of its TTL; register it again if it was lost."""
        assert self.executor_id is not None
        slug = executor_slug(self.executor_id)
        interval = self.config.provisioning_instance_ttl_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self.registry.ping(slug, INSTANCE_PRINCIPAL)
            except ServiceNotFound:
                logger.warning("litestar-registry: this instance's registration %s was gone; registering again", slug)
                with _logged("registering this instance again"):
                    await self._register_instance()
            except Exception:
                logger.exception("litestar-registry: pinging this instance's registration failed; retrying")

    async def _recover_expired(self) -> None:
        """At start: take over instances that expired while no sweep acted on them (every instance was down)."""
        after: str | None = None
        while True:
            page = await self.registry.find(
                ServiceQuery(statuses=frozenset({ServiceStatus.EXPIRED}), text=EXECUTOR_SLUG_PREFIX, after=after)
            )
            for record in page.items:
                executor = record.metadata.get("executor_id")
                if is_executor_slug(record.slug) and isinstance(executor, str) and executor != self.executor_id:
                    await self._recover(record.slug, executor)
            if page.next_after is None:
                return
            after = page.next_after

    async def _recover(self, slug: str, executor: str) -> None:
        """Take over ``executor``'s pending workflows, then drop its registration (repeating this is harmless)."""
        engine = self.engine
        if engine is None:
            return
        with _logged(f"recovering the workflows of instance {executor!r}"):
            recovered = await engine.recover_executor(executor)
            logger.warning(
                "litestar-registry: instance %r expired; this instance (%r) recovered %d workflow(s) of it",
                executor,
                self.executor_id,
                len(recovered),
            )
            with contextlib.suppress(ServiceNotFound):
                await self.registry.deregister(slug, INSTANCE_PRINCIPAL, reason="expired; its workflows recovered")


@contextlib.contextmanager
def _logged(what: str) -> Iterator[None]:
    """Log a failure of ``what`` instead of raising: the sweeper and the keepalive go on at their next tick."""
    try:
        yield
    except Exception:
        logger.exception("litestar-registry: %s failed", what)
