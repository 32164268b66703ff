"""``litestar registry ...``: the schema commands on the app's own store, driven through click as the CLI does."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from click.testing import CliRunner, Result
from litestar import Litestar

from litestar_registry import RegistryConfig, RegistryPlugin
from litestar_registry.cli import registry_group
from litestar_registry.store.sqlalchemy import SQLAlchemyServiceStore
from litestar_registry.store.sqlalchemy.migrate import VERSION_TABLE, head, metadata
from tests.backends import sqlite_tables

OUR_TABLES = set(metadata.tables)
ROOT = Path(__file__).resolve().parents[1]


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


SECRETS = ("key-of-billing-0123456789", "key-of-ops-0123456789", "key-of-ttl-0123456789", "pw-secret-77")
SETTINGS = {
    "REGISTRY_STORE_URL": "redis://:pw-secret-77@127.0.0.1:1/0",
    "REGISTRY_SERVICE_KEYS": "billing=key-of-billing-0123456789,billing=old-key-of-billing-012345",
    "REGISTRY_ADMIN_KEYS": "ops=key-of-ops-0123456789",
    "REGISTRY_TTL_REGISTRATION_KEY": "key-of-ttl-0123456789",
    "REGISTRY_TAGS": "registry,platform",
    "REGISTRY_AUTO_APPROVE_SLUGS": "search,billing",
    "REGISTRY_DEFAULT_TTL_SECONDS": "12.5",
    "REGISTRY_TTL_SECONDS": "",
    "REGISTRY_PUBLIC_READS": "yes",
    "REGISTRY_MAX_PAGE_SIZE": "200",
}


def env_file(text: str) -> dict[str, str]:
    """The variables an env file sets, read as ``docker --env-file`` or systemd would: no quotes, ``#`` comments."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, separator, value = line.partition("=")
        assert separator, line
        assert name.startswith("REGISTRY_"), line
        assert name not in values, f"{name} printed twice"
        values[name] = value
    return values


def test_env_prints_an_env_file_that_reads_back_as_the_same_settings() -> None:
    config = RegistryConfig.from_env(SETTINGS)
    output = invoke(RegistryPlugin(config), "env", "--show-secrets").output
    for never in ("None", "(empty)", "'", '"'):
        assert never not in output
    printed = env_file(output)
    assert list(printed) == [variable for variable, _, _ in RegistryConfig.environment_variables()]
    assert printed["REGISTRY_TTL_SECONDS"] == ""  # unset reads back as unset
    assert RegistryConfig.from_env(printed).to_env(show_secrets=True) == config.to_env(show_secrets=True)


def test_env_masks_secrets_unless_asked_and_stays_a_valid_env_file() -> None:
    config = RegistryConfig.from_env(SETTINGS)
    output = invoke(RegistryPlugin(config), "env").output
    for secret in SECRETS:
        assert secret not in output
    assert "# REGISTRY_SERVICE_KEYS=billing=ke******,billing=ol******  (masked" in output
    assert "# REGISTRY_STORE_URL=redis://:***@127.0.0.1:1/0  (masked" in output
    printed = env_file(output)
    masked = {"REGISTRY_STORE_URL", "REGISTRY_SERVICE_KEYS", "REGISTRY_ADMIN_KEYS", "REGISTRY_TTL_REGISTRATION_KEY"}
    assert masked.isdisjoint(printed)
    again = RegistryConfig.from_env({**printed, **{name: SETTINGS[name] for name in masked}})
    assert again.to_env(show_secrets=True) == config.to_env(show_secrets=True)


def test_env_defaults_read_back_as_the_defaults() -> None:
    output = invoke(RegistryPlugin(RegistryConfig.from_env(SETTINGS)), "env", "--defaults").output
    assert RegistryConfig.from_env(env_file(output)).to_env() == RegistryConfig().to_env()


def test_a_bad_setting_stops_the_command_line_with_one_line_and_no_traceback() -> None:
    """What a host sees from ``litestar``: click prints the configuration error, key masked, and exits with 1."""
    environ = {
        **os.environ,
        "REGISTRY_EXPIRY_WINDOWS": "three",
        "REGISTRY_ADMIN_KEYS": "ops:key-of-ops-0123456789",
    }
    command = [sys.executable, "-m", "litestar", "--app", "example_app.app:app", "registry", "env"]
    result = subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    assert output.count("litestar-registry configuration:") == 1, output
    message = " ".join(output.translate(str.maketrans("│╭╮╰╯─", "      ")).split())  # rich-click draws a box
    assert "REGISTRY_EXPIRY_WINDOWS (expiry_windows): expected a whole number, got 'three'" in message
    assert "REGISTRY_ADMIN_KEYS (admin_keys): expected account=key, comma-separated, got 'op******'" in message
    assert "key-of-ops-0123456789" not in output
