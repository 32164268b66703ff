"""``litestar registry ...``: the schema commands on the app's own store, driven through click as the CLI does."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from click.testing import CliRunner, Result
from litestar import Litestar

from litestar_registry import RegistryConfig, RegistryPlugin
from litestar_registry.cli import registry_group
from litestar_registry.store.sqlalchemy import SQLAlchemyServiceStore
from litestar_registry.store.sqlalchemy.migrate import VERSION_TABLE, head
from tests.backends import sqlite_tables

OUR_TABLES = {"registry_services", "registry_service_versions"}


def invoke(plugin: RegistryPlugin, *args: str) -> Result:
    """Run ``litestar registry <args>`` for an app with ``plugin``, as Litestar's CLI passes the app to a group."""
    app = Litestar(plugins=[plugin])
    result = CliRunner().invoke(registry_group, list(args), obj=SimpleNamespace(app=app), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def sql_plugin(path: Path, *, create_schema: bool = False) -> RegistryPlugin:
    return RegistryPlugin(RegistryConfig(store_url=f"sqlite+aiosqlite:///{path}", create_schema=create_schema))


def test_upgrade_current_downgrade_on_the_apps_store(tmp_path: Path) -> None:
    database = tmp_path / "registry.db"
    plugin = sql_plugin(database)
    assert "current: (none)" in invoke(plugin, "db", "current").output
    assert f"registry schema: (none) -> {head()}" in invoke(plugin, "db", "upgrade").output
    assert sqlite_tables(database) == {*OUR_TABLES, VERSION_TABLE}
    assert "(up to date)" in invoke(plugin, "db", "current").output
    assert f"registry schema: {head()} -> {head()}" in invoke(plugin, "db", "upgrade").output  # nothing left to do
    assert f"registry schema: {head()} -> (none)" in invoke(plugin, "db", "downgrade", "base").output
    assert sqlite_tables(database) == {VERSION_TABLE}


def test_upgrade_works_on_a_database_that_create_schema_made(tmp_path: Path) -> None:
    """Starting on the default (create_schema) and moving to migrations later must not fail on existing tables."""
    database = tmp_path / "registry.db"
    plugin = sql_plugin(database, create_schema=True)

    async def start_once() -> None:
        async with plugin.store:
            pass

    asyncio.run(start_once())
    assert f"registry schema: {head()} -> {head()}" in invoke(plugin, "db", "upgrade").output


def test_sql_mode_prints_the_script_and_touches_nothing(tmp_path: Path) -> None:
    database = tmp_path / "registry.db"
    plugin = sql_plugin(database)
    script = invoke(plugin, "db", "upgrade", "--sql").output
    assert "CREATE TABLE registry_services" in script
    assert f"INSERT INTO {VERSION_TABLE}" in script
    assert "DROP TABLE registry_services" in invoke(plugin, "db", "downgrade", "head:base", "--sql").output
    assert not database.exists()


def test_stamp_records_a_revision_without_migrating(tmp_path: Path) -> None:
    database = tmp_path / "registry.db"
    plugin = sql_plugin(database)
    assert f"registry schema: (none) -> {head()}" in invoke(plugin, "db", "stamp", "head").output
    assert sqlite_tables(database) == {VERSION_TABLE}


@pytest.mark.parametrize("url", ["memory://", "redis://127.0.0.1:1/0"])
def test_stores_without_a_schema_have_nothing_to_migrate(url: str) -> None:
    plugin = RegistryPlugin(RegistryConfig(store_url=url))
    for args in (("db", "upgrade"), ("db", "current"), ("db", "downgrade", "base")):
        assert "keeps no SQL schema: nothing to migrate" in invoke(plugin, *args).output


def test_a_borrowed_host_config_is_migrated_through_its_own_url(tmp_path: Path) -> None:
    host = SQLAlchemyAsyncConfig(connection_string=f"sqlite+aiosqlite:///{tmp_path / 'host.db'}")
    plugin = RegistryPlugin(RegistryConfig(sqlalchemy_config=host))
    assert isinstance(plugin.store, SQLAlchemyServiceStore)
    secret = SQLAlchemyServiceStore(config=SQLAlchemyAsyncConfig(connection_string="postgresql+asyncpg://u:pw@db/app"))
    assert secret.migration_target() == ("postgresql+asyncpg://u:pw@db/app", {})  # the password reaches Alembic
    assert f"-> {head()}" in invoke(plugin, "db", "upgrade").output
    assert {*OUR_TABLES, VERSION_TABLE} <= sqlite_tables(tmp_path / "host.db")
