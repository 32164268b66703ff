"""An engine on real DBOS (SQLite, or PostgreSQL when given) and a real read model, opened and closed per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

from litestar_registry.core.clock import Clock
from litestar_registry.provisioning import OutboundURLPolicy, WorkflowDefinition
from litestar_registry.provisioning.crypto import CredentialCipher
from litestar_registry.provisioning.engine import ProvisioningEngine, WorkflowDetail
from litestar_registry.provisioning.runtime import DBOSRuntime, DBOSSettings
from litestar_registry.provisioning.states import TERMINAL_WORKFLOW, WorkflowStatus
from litestar_registry.provisioning.store import ProvisioningStore
from litestar_registry.provisioning.store.sqlalchemy import SQLAlchemyProvisioningStore
from tests.provisioning.conftest import KEY, eventually, sqlite_url

CALLBACK_URL = "https://registry.example/api/v1/provisioning/callback"


@asynccontextmanager
async def running_engine(
    tmp_path: Path,
    definitions: Iterable[WorkflowDefinition],
    *,
    store: ProvisioningStore | None = None,
    clock: Clock | None = None,
    dbos_url: str | None = None,
    executor_id: str = "local",
) -> AsyncIterator[ProvisioningEngine]:
    """A launched engine whose DBOS keeps its tables in a SQLite file of its own (or ``dbos_url``)."""
    async with store or SQLAlchemyProvisioningStore(sqlite_url(tmp_path), create_schema=True) as opened:
        engine = ProvisioningEngine(
            definitions=definitions,
            store=opened,
            cipher=CredentialCipher([KEY]),
            callback_url=CALLBACK_URL,
            url_policy=OutboundURLPolicy(allow_loopback=True),
            clock=clock,
        )
        settings = DBOSSettings(
            system_database_url=dbos_url or f"sqlite:///{tmp_path / 'dbos.sqlite'}", executor_id=executor_id
        )
        await engine.open(DBOSRuntime(settings))
        try:
            yield engine
        finally:
            await engine.close()


async def settled(
    engine: ProvisioningEngine,
    workflow_id: str,
    *,
    tenant: str = "acme",
    statuses: Iterable[WorkflowStatus] = TERMINAL_WORKFLOW,
    within: float = 30.0,
) -> WorkflowDetail:
    """The workflow once its status is one of ``statuses``."""
    wanted = frozenset(statuses)

    async def check() -> WorkflowDetail | None:
        detail = await engine.get(tenant=tenant, workflow_id=workflow_id)
        return detail if detail.workflow.status in wanted else None

    result: WorkflowDetail = await eventually(check, within=within)
    return result
