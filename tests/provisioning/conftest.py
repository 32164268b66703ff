"""Fixtures of the provisioning tests: stores on every backend, a cipher, a receiver playing the external service."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import make_url, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from litestar_registry.provisioning.crypto import CredentialCipher
from litestar_registry.provisioning.store import MemoryProvisioningStore, ProvisioningStore
from litestar_registry.provisioning.store.sqlalchemy import SQLAlchemyProvisioningStore
from tests.backends import POSTGRES_URL, require_server
from tests.provisioning.receiver import Receiver

KEY = CredentialCipher.generate_key()
"""One Fernet key for the whole session (tests that need rotation make their own)."""


@pytest.fixture
def cipher() -> CredentialCipher:
    return CredentialCipher([KEY])


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as running:
        yield running


async def _admin(statement: str) -> None:
    engine = create_async_engine(POSTGRES_URL, poolclass=pool.NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[dict[str, Any]]:
    """Engine options that put the read model in a fresh PostgreSQL schema of its own, dropped afterwards."""
    require_server("postgres")
    schema = f"provisioning_test_{uuid4().hex[:8]}"
    await _admin(f'CREATE SCHEMA "{schema}"')
    try:
        yield {"connect_args": {"server_settings": {"search_path": schema}}}
    finally:
        await _admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProvisioningStore]:
    """An open, empty provisioning store of each backend."""
    if request.param == "memory":
        async with MemoryProvisioningStore() as memory:
            yield memory
    elif request.param == "sqlite":
        async with SQLAlchemyProvisioningStore(sqlite_url(tmp_path), create_schema=True) as sqlite:
            yield sqlite
    else:
        async with (
            postgres_schema() as options,
            SQLAlchemyProvisioningStore(POSTGRES_URL, create_schema=True, engine_options=options) as postgres,
        ):
            yield postgres


async def eventually(check: Any, within: float = 20.0, interval: float = 0.05) -> Any:
    """Poll the coroutine function ``check`` until it returns something truthy; its last value."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s (last value: {value!r})")
        await asyncio.sleep(interval)


def dbos_database_url(name: str) -> str:
    """A psycopg URL (what DBOS uses) for database ``name`` on the test server."""
    url = make_url(POSTGRES_URL).set(drivername="postgresql", database=name)
    return url.render_as_string(hide_password=False)


@asynccontextmanager
async def dbos_database() -> AsyncIterator[str]:
    """A PostgreSQL database of its own for DBOS's tables (``test_e_dbos_*``), dropped afterwards."""
    require_server("postgres")
    name = f"{make_url(POSTGRES_URL).database}_dbos_{uuid4().hex[:8]}"
    admin = create_async_engine(POSTGRES_URL, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield dbos_database_url(name)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@contextmanager
def example_app(tmp_path: Path) -> Iterator[str]:
    """The example app with its demo settings (no keys in the environment) on a free port and a fresh SQLite file
    in ``tmp_path``, in a process of its own; its origin."""
    from tests.e2e.conftest import ROOT, _free_port

    port = _free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("REGISTRY_")}
    env["REGISTRY_STORE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    log = tmp_path / "example.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "example_app", "--port", str(port)], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    origin = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{origin}/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield origin
    finally:
        process.terminate()
        process.wait(timeout=20)
