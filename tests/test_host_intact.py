"""Mounting the plugin changes nothing of the host's routes, errors, dependencies or database setup."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from advanced_alchemy.base import orm_registry
from advanced_alchemy.extensions.litestar import SQLAlchemyInitPlugin
from advanced_alchemy.extensions.litestar.cli import get_database_migration_plugin

from litestar_registry import RegistryConfig, RegistryPlugin
from tests.backends import sqlite_tables
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


async def test_host_database_commands_see_only_the_hosts_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`litestar database drop-all` on the host drops the host's tables and leaves the registry's alone."""
    monkeypatch.setenv("HOST_APP_DIR", str(tmp_path))
    async with serve(create_app()):  # startup: the host's create_all and our create_schema
        pass
    assert {"host_widget", "registry_services"} <= sqlite_tables(tmp_path / "shared.db")

    def litestar(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "litestar", "--app", "tests.host_app:create_app", *args]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)

    listed = await anyio.to_thread.run_sync(litestar, "--help")
    assert listed.returncode == 0, listed.stderr
    assert "database" in listed.stdout
    assert "registry" in listed.stdout
    dropped = await anyio.to_thread.run_sync(litestar, "database", "drop-all", "--no-prompt")
    assert dropped.returncode == 0, dropped.stderr
    remaining = sqlite_tables(tmp_path / "shared.db")
    assert "host_widget" not in remaining
    assert "registry_services" in remaining

    shown = await anyio.to_thread.run_sync(litestar, "registry", "env")
    assert shown.returncode == 0, shown.stderr
    assert "REGISTRY_STORE_URL='sqlite+aiosqlite:///registry.db'" in shown.stdout
