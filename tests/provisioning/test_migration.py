"""Migration 9e4b2f6a7c1d builds exactly the provisioning tables of the models, on SQLite and PostgreSQL, and its
downgrade removes them and nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from litestar_registry.store.sqlalchemy.migrate import downgrade, schema_diff, upgrade
from tests.backends import POSTGRES_URL
from tests.provisioning.conftest import postgres_schema, sqlite_url

OURS = {
    "registry_provisioning_workflows",
    "registry_provisioning_steps",
    "registry_provisioning_executions",
    "registry_provisioning_tokens",
}


async def run(url: str, options: dict[str, Any], fn: Any) -> Any:
    engine = create_async_engine(url, poolclass=pool.NullPool, **options)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def workflow_indexes(conn: Connection) -> dict[str, list[str | None]]:
    found = inspect(conn).get_indexes("registry_provisioning_workflows")
    return {str(index["name"]): list(index["column_names"]) for index in found}


async def check(url: str, options: dict[str, Any]) -> None:
    await upgrade(url, engine_options=options)  # to the newest revision: 9e4b2f6a7c1d and whatever came after
    assert await run(url, options, tables) >= OURS
    assert await run(url, options, schema_diff) == []  # the migration builds what the models declare
    assert await run(url, options, workflow_indexes) == {
        "ix_registry_provisioning_workflows_tenant": ["tenant", "id"],
        "ix_registry_provisioning_workflows_tenant_status": ["tenant", "status", "id"],
        "ix_registry_provisioning_workflows_tenant_service": ["tenant", "service_slug", "id"],
        "ix_registry_provisioning_workflows_service_status": ["service_slug", "status"],
        "ix_registry_provisioning_workflows_status": ["status", "id"],
    }
    await downgrade(url, "5c0e7a1d2b3f", engine_options=options)
    remaining = await run(url, options, tables)
    assert not OURS & remaining
    assert "registry_services" in remaining


async def test_on_sqlite(tmp_path: Path) -> None:
    await check(sqlite_url(tmp_path), {})


@pytest.mark.postgres
async def test_on_postgres() -> None:
    async with postgres_schema() as options:
        await check(POSTGRES_URL, options)
