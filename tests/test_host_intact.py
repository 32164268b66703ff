"""Mounting the plugin changes nothing of the host's routes, errors, dependencies or database setup."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import anyio
import pytest
from advanced_alchemy.base import orm_registry
from advanced_alchemy.extensions.litestar import SQLAlchemyInitPlugin
from advanced_alchemy.extensions.litestar.cli import get_database_migration_plugin
from sqlalchemy import inspect, make_url, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from litestar_registry import RegistryConfig, RegistryPlugin
from tests.backends import POSTGRES_URL, require_server, sqlite_tables
from tests.clients import serve
from tests.host_app import HOST_KEY, create_app, host_db_config, make_host

ROOT = Path(__file__).resolve().parent.parent
HOST_REQUESTS = [
    ("GET", "/widgets/7"),
    ("GET", "/widgets/0"),
    ("GET", "/widgets/13"),
    ("GET", "/widgets/abc"),
    ("GET", "/nowhere"),
    ("POST", "/widgets/7"),
    ("GET", "/registry_core"),
]


def registry(tmp_path: Path, **settings: object) -> RegistryPlugin:
    return RegistryPlugin(
        RegistryConfig(
            store_url=f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}", service_keys={"a": HOST_KEY}, **settings
        )  # type: ignore[arg-type]
    )


async def _answers(app: object) -> list[tuple[int, str, bytes]]:
    async with serve(app) as client:  # type: ignore[arg-type]
        answers = []
        for method, path in HOST_REQUESTS:
            response = await client.request(method, path)
            answers.append((response.status_code, response.headers.get("content-type", ""), response.content))
        return answers


async def test_host_routes_and_error_bodies_are_unchanged(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    alone = await _answers(make_host(tmp_path / "a"))
    mounted = await _answers(make_host(tmp_path / "b", registry(tmp_path / "b")))
    assert mounted == alone
    assert alone[0][2] == b'{"id":7,"greeting":"hello from the host"}'
    assert alone[2][0] == 418  # the host's own handler still runs for the host's error


async def test_registry_errors_are_problems_while_host_errors_are_not(tmp_path: Path) -> None:
    app = make_host(tmp_path, registry(tmp_path))
    async with serve(app) as client:
        ours = await client.get("/api/v1/registry/services/nope", headers={"Authorization": f"Bearer {HOST_KEY}"})
        theirs = await client.get("/widgets/0")
    assert ours.headers["content-type"].startswith("application/problem+json")
    assert theirs.json() == {"status_code": 404, "detail": "no widget 0"}


def test_only_the_hosts_sqlalchemy_config_is_seen(tmp_path: Path) -> None:
    db_config = host_db_config(tmp_path)
    app = make_host(tmp_path, registry(tmp_path), db_config=db_config)
    init_plugins = [p for p in app.plugins if isinstance(p, SQLAlchemyInitPlugin)]
    assert len(init_plugins) == 1
    # The function the host's `litestar database ...` commands resolve their config through:
    assert get_database_migration_plugin(app).config == [db_config]
    # Our tables stay out of the host's metadata, so its create_all and autogenerate never see them.
    assert "host_widget" in orm_registry.metadata.tables
    assert not [name for name in orm_registry.metadata.tables if name.startswith("registry_")]
    assert "registry_core" not in app.dependencies
    assert "greeting" in app.dependencies


def _litestar(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The host's own CLI in a process of its own, on the app that ``HOST_APP_*`` in the environment describe."""
    command = [sys.executable, "-m", "litestar", "--app", "tests.host_app:create_app", *args]
    return subprocess.run(command, cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=120, check=False)


async def litestar(*args: str, stdin: str | None = None) -> str:
    """Run ``litestar ARGS`` as the host would, and return what it printed; it must succeed."""
    done = await anyio.to_thread.run_sync(lambda: _litestar(*args, stdin=stdin))
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def revisions(host_dir: Path) -> list[Path]:
    """The revision files of the host's own migrations."""
    return sorted(path for path in (host_dir / "migrations" / "versions").glob("*.py") if path.name != "__init__.py")


async def test_host_database_commands_see_only_the_hosts_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host's `litestar database` commands on a SQLite file it shares (by URL) with the registry.

    `make-migrations` finds nothing to do: the host's tables exist (its create_all), and the registry's are not the
    host's to drop. `drop-all` drops the host's tables and leaves the registry's alone.
    """
    monkeypatch.setenv("HOST_APP_DIR", str(tmp_path))
    async with serve(create_app()):  # startup: the host's create_all and our create_schema
        pass
    assert {"host_widget", "registry_services"} <= sqlite_tables(tmp_path / "shared.db")

    listed = await litestar("--help")
    assert "database" in listed
    assert "registry" in listed
    await litestar("database", "init", "--no-prompt")
    await litestar("database", "make-migrations", "--no-prompt", "-m", "nothing to do")
    assert revisions(tmp_path) == []  # an empty autogenerate writes no file
    await litestar("database", "drop-all", "--no-prompt")
    remaining = sqlite_tables(tmp_path / "shared.db")
    assert "host_widget" not in remaining
    assert {"registry_services", "registry_service_versions", "registry_alembic_version"} <= remaining

    shown = await litestar("registry", "env")  # our commands, beside the host's
    assert re.search(r"^REGISTRY_STORE_URL=", shown, re.MULTILINE), shown


# --- the host's migrations, on the engine it shares with the registry ----------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The database host and registry share: a SQLite file, or a PostgreSQL database of the test's own."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
        return
    require_server("postgres")
    server = make_url(POSTGRES_URL)
    name = f"{server.database}_host_{uuid4().hex[:8]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def _snapshot(conn: Connection) -> tuple[set[str], list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The tables, and every registration and version row, read with plain SQL rather than through the store."""
    services = conn.execute(text("SELECT slug, version, status FROM registry_services ORDER BY slug"))
    versions = conn.execute(text("SELECT slug, version FROM registry_service_versions ORDER BY id"))
    return set(inspect(conn).get_table_names()), [tuple(row) for row in services], [tuple(row) for row in versions]


async def snapshot(url: str) -> tuple[set[str], list[tuple[object, ...]], list[tuple[object, ...]]]:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_snapshot)
    finally:
        await engine.dispose()


async def test_the_hosts_own_migrations_keep_every_registration(
    shared_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host shares its engine (``sqlalchemy_config=``) and leaves its tables to its own Alembic migrations.

    Its `litestar database` commands (advanced-alchemy's, with the env.py they generate, which filters nothing) must
    neither propose nor run anything on the registry's tables: make-migrations, upgrade, downgrade, dump-data,
    drop-all. Before the guard, the first revision dropped registry_services, registry_service_versions and
    registry_alembic_version, and `upgrade` deleted every registration.
    """
    for name, value in {
        "HOST_APP_DIR": str(tmp_path),
        "HOST_APP_DATABASE_URL": shared_url,
        "HOST_APP_SHARE_ENGINE": "1",
        "HOST_APP_CREATE_ALL": "0",
    }.items():
        monkeypatch.setenv(name, value)
    auth = {"Authorization": f"Bearer {HOST_KEY}"}
    async with serve(create_app()) as client:  # the registry sets its own tables up; the host's wait for migrations
        for slug in ("billing", "search", "search-indexer"):
            body = {"slug": slug, "name": slug, "version": "1.0.0"}
            assert (await client.post("/api/v1/registry/register", json=body, headers=auth)).status_code == 201
        body = {"slug": "billing", "name": "billing", "version": "1.1.0"}
        assert (await client.put("/api/v1/registry/register", json=body, headers=auth)).status_code == 200
    tables, services, versions = await snapshot(shared_url)
    registry_tables = {name for name in tables if name.startswith("registry_")}
    assert tables == registry_tables  # the host's own wait for its migrations
    assert {"registry_services", "registry_service_versions", "registry_alembic_version"} <= registry_tables
    assert [slug for slug, *_ in services] == ["billing", "search", "search-indexer"]
    assert len(versions) == 4

    await litestar("database", "init", "--no-prompt")
    await litestar("database", "make-migrations", "--no-prompt", "-m", "host widgets")
    [revision] = revisions(tmp_path)
    script = revision.read_text()
    assert "op.create_table('host_widget'" in script
    assert "registry" not in script.lower()  # no drop_table, no drop_index, no version table of ours

    await litestar("database", "upgrade", "--no-prompt")
    assert await snapshot(shared_url) == ({*registry_tables, "host_widget", "alembic_versions"}, services, versions)
    await litestar("database", "make-migrations", "--no-prompt", "-m", "nothing new")
    assert revisions(tmp_path) == [revision]  # the database now matches the host's models: nothing to propose

    await litestar("database", "downgrade", "--no-prompt", "base")
    assert await snapshot(shared_url) == ({*registry_tables, "alembic_versions"}, services, versions)
    await litestar("database", "upgrade", "--no-prompt")

    dumped = tmp_path / "dump"
    await litestar("database", "dump-data", "--table", "*", "--dir", str(dumped), stdin="y\n")
    assert sorted(path.name for path in dumped.iterdir()) == ["host_widget.json"]  # only the host's models
    assert json.loads((dumped / "host_widget.json").read_text()) == []

    await litestar("database", "drop-all", "--no-prompt")
    assert await snapshot(shared_url) == (registry_tables, services, versions)  # the host's version table too

    async with serve(create_app()) as client:  # and the registry serves them as before, at its recorded revision
        listed = (await client.get("/api/v1/registry/services", headers=auth)).json()
    assert [(service["slug"], service["version"]) for service in listed["data"]] == [
        ("billing", "1.1.0"),
        ("search", "1.0.0"),
        ("search-indexer", "1.0.0"),
    ]
