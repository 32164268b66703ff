"""The registry's own Alembic migrations: a fresh SQLite file and a fresh PostgreSQL schema go up to the model's exact
schema, keep their revision in ``registry_alembic_version``, leave the host's tables alone, and come down again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from alembic.autogenerate import produce_migrations
from alembic.operations.ops import CreateTableOp
from alembic.runtime.migration import MigrationContext
from alembic.runtime.plugins import Plugin
from alembic.util import PriorityDispatchResult
from sqlalchemy import Column, Index, Integer, MetaData, Table, inspect, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from litestar_registry.core import states
from litestar_registry.core.models import Contact, ServiceQuery, ServiceStatus
from litestar_registry.store.sqlalchemy import SQLAlchemyServiceStore, metadata
from litestar_registry.store.sqlalchemy.migrate import (
    VERSION_TABLE,
    current,
    current_sync,
    downgrade,
    downgrade_sync,
    head,
    schema_diff,
    upgrade,
    upgrade_sync,
)
from tests.backends import POSTGRES_URL, backend_url, require_server
from tests.records import T0, first_version, insert_rows, make_record

OUR_TABLES = set(metadata.tables)
"""Every table of ours: the registry's and the provisioning read model's (migrate imports both into one metadata)."""


class Target:
    """A database to migrate: its URL and the engine options that reach it (a schema of its own on PostgreSQL)."""

    def __init__(self, url: str, engine_options: dict[str, Any] | None = None) -> None:
        self.url = url
        self.engine_options = engine_options or {}

    async def run(self, fn: Any) -> Any:
        engine = create_async_engine(self.url, poolclass=pool.NullPool, **self.engine_options)
        try:
            async with engine.begin() as conn:
                return await conn.run_sync(fn)
        finally:
            await engine.dispose()


@pytest.fixture
async def postgres_target() -> AsyncIterator[Target]:
    """A fresh schema in the shared ``test`` database, dropped afterwards whatever happens."""
    require_server("postgres")
    schema = f"registry_migration_test_{uuid4().hex[:8]}"
    admin = Target(POSTGRES_URL)
    await admin.run(lambda conn: conn.execute(text(f'CREATE SCHEMA "{schema}"')))
    try:
        yield Target(POSTGRES_URL, {"connect_args": {"server_settings": {"search_path": schema}}})
    finally:
        await admin.run(lambda conn: conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    if request.param == "sqlite":
        return Target(backend_url("sqlite", tmp_path))
    postgres: Target = request.getfixturevalue("postgres_target")
    return postgres


def diff_on(tables: set[str]) -> Any:
    """A ``schema_diff`` of only what concerns ``tables``: a revision's test, once later revisions add tables."""

    def table_of(item: Any) -> str | None:
        if isinstance(item, list):  # column modifications come grouped
            item = item[0]
        for part in item[1:]:
            if isinstance(part, Table):
                return part.name
            if isinstance(part, Index):
                return part.table.name if part.table is not None else None
            if isinstance(part, str) and part.startswith("registry_"):
                return part
        return None

    def diff(conn: Connection) -> list[Any]:
        return [item for item in schema_diff(conn) if table_of(item) in tables]

    return diff


def _table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


LATER_DROPPED = frozenset({"ix_registry_services_tags", "ix_registry_services_capabilities"})
"""Indexes an intermediate revision has and the models no longer declare (e6a8c1f3d5b7 drops them)."""


def without_later_drops(diff: Any) -> Any:
    """``diff`` without the removal of :data:`LATER_DROPPED`: a test of a revision that still has them."""

    def kept(conn: Connection) -> list[Any]:
        return [
            item
            for item in diff(conn)
            if not (item[0] == "remove_index" and isinstance(item[1], Index) and item[1].name in LATER_DROPPED)
        ]

    return kept


INITIAL = "3f77ae93f23e"


def test_the_package_ships_one_head() -> None:
    assert head() == "e6a8c1f3d5b7"


async def test_upgrade_builds_the_models_schema_and_downgrade_removes_it(target: Target) -> None:
    options = target.engine_options
    assert await current(target.url, engine_options=options) is None
    await upgrade(target.url, engine_options=options)
    assert await current(target.url, engine_options=options) == head()
    tables = await target.run(_table_names)
    assert tables == {*OUR_TABLES, VERSION_TABLE}  # our own version table, never the host's alembic_version
    assert await target.run(schema_diff) == []
    indexes = await target.run(lambda conn: inspect(conn).get_indexes("registry_services"))
    expected = {
        ("ix_registry_services_next_check", ("next_check_us", "slug")),
        ("ix_registry_services_status", ("status", "slug")),
    }
    assert {(index["name"], tuple(index["column_names"])) for index in indexes} == expected
    labels = await target.run(lambda conn: inspect(conn).get_indexes("registry_service_labels"))
    assert {(index["name"], tuple(index["column_names"])) for index in labels} == {
        ("ix_registry_service_labels_slug", ("slug",))
    }
    key = await target.run(lambda conn: inspect(conn).get_pk_constraint("registry_service_labels"))
    assert key["constrained_columns"] == ["kind", "value", "slug"]  # the filters' walk: one label's slugs in order

    await upgrade(target.url, engine_options=options)  # at head already: nothing to do
    await downgrade(target.url, "base", engine_options=options)
    assert await current(target.url, engine_options=options) is None
    assert await target.run(_table_names) == {VERSION_TABLE}


async def test_a_migrated_database_serves_the_store(target: Target) -> None:
    await upgrade(target.url, engine_options=target.engine_options)
    async with SQLAlchemyServiceStore(target.url, engine_options=target.engine_options) as store:
        record = make_record("migrated", tags=("core", "edge"))
        await store.create(record, first_version(record))
        contact = Contact(at=T0 + timedelta(seconds=10), status=ServiceStatus.ACTIVE, from_statuses=states.LIVE)
        assert await store.touch("migrated", contact) is not None
        assert [r.slug for r in (await store.find(ServiceQuery(tag="edge"))).items] == ["migrated"]
        changed = await store.sweep_due(T0 + timedelta(seconds=41), states.advance)
        assert [after.status for _, after in changed] == [ServiceStatus.DEGRADED]
        assert await store.delete("migrated") is True
    await downgrade(target.url, "base", engine_options=target.engine_options)


async def test_migrations_leave_the_hosts_tables_and_history_alone(tmp_path: Path) -> None:
    host = Target(backend_url("sqlite", tmp_path))

    def host_schema(conn: Connection) -> None:
        conn.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY)"))
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('hosts0001')"))

    await host.run(host_schema)
    await upgrade(host.url)
    assert await host.run(_table_names) == {"orders", "alembic_version", VERSION_TABLE, *OUR_TABLES}
    assert await host.run(schema_diff) == []  # the host's tables are neither ours to add nor ours to drop
    await downgrade(host.url, "base")
    assert await host.run(_table_names) == {"orders", "alembic_version", VERSION_TABLE}
    assert await host.run(lambda conn: conn.scalar(text("SELECT version_num FROM alembic_version"))) == "hosts0001"


def test_the_sync_cores_run_outside_an_event_loop(tmp_path: Path) -> None:
    url = backend_url("sqlite", tmp_path)
    assert current_sync(url) is None
    assert upgrade_sync(url) is None
    assert current_sync(url) == head()
    assert downgrade_sync(url, "base") is None
    assert current_sync(url) is None


@pytest.mark.parametrize(
    ("url", "dialect_marks"),
    [
        ("sqlite+aiosqlite:///never-created.db", ["CREATE TABLE registry_services", "JSON"]),
        ("postgresql+asyncpg://nobody@unreachable.invalid/none", ['COLLATE "C"', "JSONB", "DOUBLE PRECISION"]),
    ],
)
def test_offline_mode_returns_the_sql_without_connecting(url: str, dialect_marks: list[str]) -> None:
    script = upgrade_sync(url, sql=True)
    assert script is not None
    for mark in (f"CREATE TABLE {VERSION_TABLE}", "CREATE INDEX ix_registry_services_next_check", *dialect_marks):
        assert mark in script
    assert "alembic_version (" not in script.replace(VERSION_TABLE, "")
    down = downgrade_sync(url, "head:base", sql=True)
    assert down is not None
    assert "DROP TABLE registry_services" in down
    assert not Path("never-created.db").exists()


# --- create_schema: the development path, compatible with the migrations -------------------------------------------


async def test_create_schema_builds_a_fresh_database_at_the_newest_revision(target: Target) -> None:
    options = target.engine_options
    async with SQLAlchemyServiceStore(target.url, create_schema=True, engine_options=options):
        pass
    assert await current(target.url, engine_options=options) == head()
    assert await target.run(_table_names) == {*OUR_TABLES, VERSION_TABLE}
    assert await target.run(schema_diff) == []
    # Reopening finds the newest revision and leaves everything as it is; the migrations agree it is at head.
    async with SQLAlchemyServiceStore(target.url, create_schema=True, engine_options=options) as store:
        record = make_record("kept")
        await store.create(record, first_version(record))
    await upgrade(target.url, engine_options=options)
    async with SQLAlchemyServiceStore(target.url, engine_options=options) as store:
        assert await store.get("kept") is not None


async def test_tables_without_a_revision_are_stamped_only_if_they_match(tmp_path: Path) -> None:
    matching = Target(backend_url("sqlite", tmp_path / "matching"))
    (tmp_path / "matching").mkdir()
    await matching.run(metadata.create_all)  # as an earlier create_all, which recorded no revision, left them
    async with SQLAlchemyServiceStore(matching.url, create_schema=True):
        pass
    assert await current(matching.url) == head()

    (tmp_path / "drifted").mkdir()
    drifted = Target(backend_url("sqlite", tmp_path / "drifted"))
    await drifted.run(lambda conn: conn.execute(text("CREATE TABLE registry_services (slug TEXT PRIMARY KEY)")))
    with pytest.raises(RuntimeError, match="differ from this version's schema"):
        await SQLAlchemyServiceStore(drifted.url, create_schema=True).open()
    assert await current(drifted.url) is None  # nothing stamped, nothing created
    assert await drifted.run(_table_names) == {"registry_services"}


@pytest.mark.postgres
async def test_instances_starting_together_set_the_schema_up_once(postgres_target: Target) -> None:
    stores = [
        SQLAlchemyServiceStore(postgres_target.url, create_schema=True, engine_options=postgres_target.engine_options)
        for _ in range(4)
    ]
    try:
        await asyncio.gather(*(store.open() for store in stores))  # the advisory lock turns a race into a queue
        assert await current(postgres_target.url, engine_options=postgres_target.engine_options) == head()
        count = await postgres_target.run(lambda conn: conn.scalar(text(f"SELECT count(*) FROM {VERSION_TABLE}")))
        assert count == 1
    finally:
        await asyncio.gather(*(store.close() for store in stores))


def _json_columns(conn: Connection) -> dict[str, str]:
    return {
        column["name"]: type(column["type"]).__name__
        for column in inspect(conn).get_columns("registry_services")
        if column["name"] in {"endpoints", "metadata", "owner", "health", "extensions", "tags", "capabilities"}
    }


async def test_create_schema_migrates_a_database_at_an_older_revision(target: Target) -> None:
    """The path a deployment on the default takes when a new version ships a migration: startup brings it along."""
    options = target.engine_options
    await upgrade(target.url, INITIAL, engine_options=options)
    record = make_record("old-timer", metadata={"huge": 1e300})
    await target.run(lambda conn: insert_rows(conn, record))
    async with SQLAlchemyServiceStore(target.url, create_schema=True, engine_options=options) as store:
        assert await current(target.url, engine_options=options) == head()
        assert await target.run(schema_diff) == []
        kept = await store.get("old-timer")
        assert kept is not None
    if target.url.startswith("postgresql"):
        types = await target.run(_json_columns)
        assert {name: kind for name, kind in types.items() if kind == "JSONB"} == {
            "tags": "JSONB",
            "capabilities": "JSONB",
        }
    await downgrade(target.url, INITIAL, engine_options=options)
    assert await current(target.url, engine_options=options) == INITIAL


async def test_data_comes_back_exactly_as_stored(target: Target) -> None:
    """Numbers JSONB would normalize, and key order, survive the round trip (so an identical PUT stays unchanged)."""
    async with SQLAlchemyServiceStore(target.url, create_schema=True, engine_options=target.engine_options) as store:
        metadata_in = {"z": 1, "huge": 1e300, "big": 1e16, "a": {"y": 2.50, "b": -0.0}}
        record = make_record("exact", metadata=metadata_in)
        await store.create(record, first_version(record))
        stored = await store.get("exact")
    assert stored is not None
    assert stored.metadata == metadata_in
    assert list(stored.metadata) == ["z", "huge", "big", "a"]
    assert [type(stored.metadata[key]) for key in ("huge", "big")] == [float, float]


# --- the host's autogenerate never sees the registry's tables (autogenerate_guard) ---------------------------------


def _host_metadata() -> MetaData:
    """A host's models: one plain table, and one of the host's own whose name happens to start with ``registry_``."""
    host = MetaData()
    Table("orders", host, Column("id", Integer, primary_key=True))
    Table("registry_of_deeds", host, Column("id", Integer, primary_key=True))
    return host


def _tables_of(ops: list[Any]) -> list[tuple[str, str]]:
    return [(type(op).__name__, op.table_name) for op in ops]


def _host_migration(conn: Connection, opts: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """What the host's autogenerate writes: its env.py configures no filter, only the host's version table."""
    script = produce_migrations(MigrationContext.configure(conn, opts=opts or {}), _host_metadata())
    assert script.upgrade_ops is not None
    assert script.downgrade_ops is not None
    return script.upgrade_ops.ops, script.downgrade_ops.ops


async def test_a_hosts_autogenerate_proposes_nothing_about_the_registrys_tables(target: Target) -> None:
    """Without the guard: drop_table for both tables and registry_alembic_version, and their indexes."""
    await upgrade(target.url, engine_options=target.engine_options)
    upgrade_ops, downgrade_ops = await target.run(_host_migration)
    # The host's own tables, its registry_-named one included, are created (and dropped on downgrade) as before.
    assert _tables_of(upgrade_ops) == [("CreateTableOp", "orders"), ("CreateTableOp", "registry_of_deeds")]
    assert sorted(_tables_of(downgrade_ops)) == [("DropTableOp", "orders"), ("DropTableOp", "registry_of_deeds")]


@pytest.mark.parametrize(
    "plugins",
    [
        ["alembic.autogenerate.*"],
        ["alembic.autogenerate.schemas", "alembic.autogenerate.tables"],
        ["alembic.autogenerate.*", "~alembic.autogenerate.comments", "alembic.ext.checkconstraint_byname"],
    ],
)
async def test_the_guard_holds_whatever_autogenerate_plugins_the_host_enables(
    tmp_path: Path, plugins: list[str]
) -> None:
    """It sits on Alembic's global comparators, which every run copies whatever its ``autogenerate_plugins``."""
    db = Target(backend_url("sqlite", tmp_path))
    await upgrade(db.url)
    upgrade_ops, _ = await db.run(lambda conn: _host_migration(conn, {"autogenerate_plugins": plugins}))
    assert _tables_of(upgrade_ops) == [("CreateTableOp", "orders"), ("CreateTableOp", "registry_of_deeds")]


async def test_the_registrys_own_autogenerate_still_sees_its_tables(tmp_path: Path) -> None:
    """A run whose version table is ours is ours (writing a new migration, ``schema_diff``): nothing is hidden."""
    db = Target(backend_url("sqlite", tmp_path))

    def ours(conn: Connection) -> list[Any]:
        script = produce_migrations(MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}), metadata)
        assert script.upgrade_ops is not None
        return [op.table_name for op in script.upgrade_ops.ops if isinstance(op, CreateTableOp)]

    assert set(await db.run(ours)) == set(metadata.tables)
    await db.run(lambda conn: conn.execute(text("CREATE TABLE registry_services (slug TEXT PRIMARY KEY)")))
    assert await db.run(schema_diff)  # a drifted table of ours is still reported to ensure_schema


async def test_an_alembic_plugin_outside_alembics_namespace_is_off_unless_the_host_names_it(tmp_path: Path) -> None:
    """Why the guard is not an Alembic ``Plugin``: the default ``autogenerate_plugins`` leaves third parties out."""
    db = Target(backend_url("sqlite", tmp_path))
    calls: list[str] = []

    def probe(autogen_context: Any, upgrade_ops: Any) -> PriorityDispatchResult:
        calls.append("called")
        return PriorityDispatchResult.CONTINUE

    plugin = Plugin("litestar_registry.probe")
    try:
        plugin.add_autogenerate_comparator(probe, "autogenerate")
        await db.run(_host_migration)
        assert calls == []
        named = {"autogenerate_plugins": ["alembic.autogenerate.*", "litestar_registry.probe"]}
        await db.run(lambda conn: _host_migration(conn, named))
        assert calls == ["called"]
    finally:
        plugin.remove()
