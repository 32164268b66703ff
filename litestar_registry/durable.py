"""The plugin's one DBOS runtime, shared by provisioning and webhooks, and this app instance in its own registry.

:class:`DurableExecution` decides once where DBOS keeps its tables and under which executor id this process runs
workflows, whichever of provisioning and webhooks asks first; each of them then starts and stops the one
:class:`~litestar_registry.provisioning.runtime.DBOSRuntime` (the first start launches DBOS, the last stop destroys
it). Every engine is activated before the launch, since launching recovers this executor's pending workflows of both
kinds at once.

When DBOS's database is PostgreSQL (several instances), this instance registers itself in the registry it serves and
pings (see :mod:`litestar_registry.provisioning.instances`); when another instance's registration expires, the
instance whose sweep expired it recovers that executor's pending workflows, provisioning runs and webhook deliveries
alike. Nothing here imports DBOS until a runtime is prepared.
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
from litestar_registry.core.feed import raise_if_cancelled
from litestar_registry.core.models import ServiceQuery, ServiceRecord, ServiceStatus
from litestar_registry.provisioning.instances import (
    EXECUTOR_SLUG_PREFIX,
    INSTANCE_PRINCIPAL,
    executor_registration,
    executor_slug,
    expired_executors,
    is_executor_slug,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from litestar_registry.config import RegistryConfig
    from litestar_registry.core.registry import Registry
    from litestar_registry.provisioning.runtime import DBOSRuntime

__all__ = ("DurableExecution", "default_dbos_url")

logger = logging.getLogger("litestar_registry.provisioning")


def default_dbos_url(store_url: URL | None) -> str | None:
    """DBOS's system database for read models kept at ``store_url``; ``None`` when it needs a temporary file.

    A SQLite file gets a sibling (``registry.db`` -> ``registry-dbos.sqlite``): DBOS's tables have generic names
    (``queues``) and its SQLite mode is for one process. A PostgreSQL database is shared with DBOS, which keeps its
    tables in a schema of its own (``dbos``), through psycopg.
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


class DurableExecution:
    """The DBOS runtime of one plugin: its database, its executor id, and this instance's registration."""

    def __init__(self, config: RegistryConfig, registry: Registry) -> None:
        self.config = config
        self.registry = registry
        self.runtime: DBOSRuntime | None = None
        self.executor_id: str | None = None
        self.shared = False
        """Whether DBOS's database is shared by several instances (PostgreSQL): they then register themselves."""
        self.temporary: str | None = None
        """The directory of a temporary DBOS file (beside a memory store), removed at :meth:`close`."""
        self._keepalive: asyncio.Task[None] | None = None

    def prepare(self, store_url: URL | None) -> DBOSRuntime:
        """The runtime, decided on the first call from the configuration and the read models' database ``store_url``.

        DBOS's database: ``provisioning_dbos_url``, else a sibling of a SQLite read model, the PostgreSQL database of
        the read models, or a temporary file beside a memory store. Later calls return the same runtime.
        """
        if self.runtime is not None:
            return self.runtime
        from litestar_registry.provisioning.runtime import DBOSRuntime, DBOSSettings

        config = self.config
        dbos_url = config.provisioning_dbos_url or default_dbos_url(store_url) or self._temporary_dbos_url()
        self.shared = dbos_url.startswith(("postgresql://", "postgres://"))
        self.executor_id = config.provisioning_executor_id or (
            f"{socket.gethostname()}-{secrets.token_hex(4)}" if self.shared else "local"
        )
        settings = DBOSSettings(
            system_database_url=dbos_url,
            application_version=config.provisioning_application_version,
            executor_id=self.executor_id,
        )
        self.runtime = DBOSRuntime(settings)
        return self.runtime

    async def join(self) -> None:
        """Once DBOS runs, with a shared database: register this instance and keep it alive.

        Then take over the instances that expired while no sweep acted on them (every instance was down).
        """
        if self.runtime is None or not self.shared or self._keepalive is not None:
            return
        await self._register_instance()
        self._keepalive = asyncio.create_task(self._keep_alive(), name="litestar-registry-instance")
        await self._recover_expired()

    async def close(self) -> None:
        """Stop pinging (a survivor takes over once the registration expires) and drop a temporary DBOS file.

        Call it after every user stopped the runtime. The registration is left to expire rather than removed: its
        workflows still wait, and only its expiry makes a survivor recover them.
        """
        task, self._keepalive = self._keepalive, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.temporary is not None:
            shutil.rmtree(self.temporary, ignore_errors=True)
            self.temporary = None
        self.runtime = None

    def _temporary_dbos_url(self) -> str:
        """A SQLite file in a directory removed at close: beside a store that forgets, DBOS forgets as well."""
        self.temporary = tempfile.mkdtemp(prefix="litestar-registry-dbos-")
        return f"sqlite:///{Path(self.temporary) / 'dbos.sqlite'}"

    # Hooks into the registry

    async def on_sweep(self, changes: Sequence[tuple[ServiceRecord, ServiceRecord]]) -> None:
        """After a sweep: recover the workflows of every other instance whose registration it expired."""
        if self._keepalive is None:
            return
        for slug, executor in expired_executors(changes):
            if executor != self.executor_id:
                await self._recover(slug, executor)

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
            raise_if_cancelled()  # a driver that swallowed the cancellation must not keep this loop alive
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
        from litestar_registry.provisioning.runtime import DBOSRuntime

        with _logged(f"recovering the workflows of instance {executor!r}"):
            recovered = await DBOSRuntime.recover([executor])
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
