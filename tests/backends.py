"""Which backends the contract and API tests run on, and how each is reached.

PostgreSQL and Redis are real servers on 127.0.0.1. Without one, its cases skip with a reason; under ``CI=true`` a
missing server fails the run instead, so CI can never go green by skipping.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from litestar_registry.store import ServiceStore, create_store

POSTGRES_URL = os.environ.get("REGISTRY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("REGISTRY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

BACKENDS = ["memory", "sqlite", "postgres", "redis"]
SERVER_BACKENDS = {"postgres": POSTGRES_URL, "redis": REDIS_URL}


def require_server(backend: str) -> None:
    """Skip (or, under CI, fail) unless the server behind ``backend`` accepts a TCP connection."""
    url = SERVER_BACKENDS.get(backend)
    if url is None:
        return
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or {"postgres": 5432, "redis": 6379}[backend]
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError as exc:
        message = f"{backend} server not reachable at {host}:{port} ({exc})"
        if IN_CI:
            pytest.fail(f"{message}; under CI=true a missing server is a failure")
        pytest.skip(message)


def backend_url(backend: str, tmp_path: Path) -> str:
    """The store URL for ``backend``; SQLite gets a file in ``tmp_path`` (``:memory:`` is one database a connection)."""
    require_server(backend)
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    return SERVER_BACKENDS[backend]


async def wipe(store: ServiceStore) -> None:
    """Remove everything a store holds: the server backends are shared between tests."""
    clear = getattr(store, "_clear_for_tests", None)
    if clear is not None:
        await clear()


@asynccontextmanager
async def open_store(backend: str, tmp_path: Path) -> AsyncIterator[ServiceStore]:
    """An opened, empty store of ``backend``; closed and emptied again afterwards."""
    store = create_store(backend_url(backend, tmp_path), create_schema=True)
    await store.open()
    try:
        await wipe(store)
        yield store
        await wipe(store)
    finally:
        await store.close()


def sqlite_tables(path: Path) -> set[str]:
    """The tables in the SQLite file at ``path``, read without the store (what is really there)."""
    with closing(sqlite3.connect(path)) as db:
        return {name for (name,) in db.execute("select name from sqlite_master where type = 'table'")}
