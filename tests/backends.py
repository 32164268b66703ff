"""Which backends the contract and API tests run on, and how each is reached.

PostgreSQL and Redis are real servers on 127.0.0.1. Without one, its cases skip with a reason; under ``CI=true`` a
missing server fails the run instead, so CI can never go green by skipping. Under pytest-xdist each worker has a
PostgreSQL database and a Redis database of its own (see ``POSTGRES_URL`` and ``REDIS_URL``), as tests empty them.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing, suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import make_url

from litestar_registry.store import ServiceStore, create_store

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
"""The pytest-xdist worker running this process (``gw0``, ``gw1``, ...), or ``""`` in a serial run."""
WORKER_INDEX = int(WORKER.removeprefix("gw")) if WORKER.startswith("gw") else 0


def _worker_postgres_url(base: str) -> str:
    """Each xdist worker gets a database of its own, named after it: ``test`` becomes ``test_gw0``, ``test_gw1``..."""
    if not WORKER:
        return base
    url = make_url(base)
    return url.set(database=f"{url.database}_{WORKER}").render_as_string(hide_password=False)


def _worker_redis_url(setting: str) -> str:
    """Each xdist worker gets a Redis database of its own: the ``N``-th URL of a comma-separated list, or else the
    one URL's database number minus ``N`` (``/15`` serves ``gw0`` with 15, ``gw1`` with 14, ...)."""
    urls = [url.strip() for url in setting.split(",") if url.strip()]
    if len(urls) > 1:
        if len(urls) <= WORKER_INDEX:
            raise pytest.UsageError(f"REGISTRY_TEST_REDIS_URL lists {len(urls)} URLs, too few for worker {WORKER}")
        return urls[WORKER_INDEX]
    (url,) = urls
    if not WORKER_INDEX:
        return url
    parts = urlsplit(url)
    number = int(parts.path.strip("/") or 0) - WORKER_INDEX
    if number < 0:
        raise pytest.UsageError(
            f"REGISTRY_TEST_REDIS_URL {url}: no Redis database left for worker {WORKER}; list one URL per worker"
        )
    return urlunsplit(parts._replace(path=f"/{number}"))


POSTGRES_URL = _worker_postgres_url(
    os.environ.get("REGISTRY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
)
REDIS_URL = _worker_redis_url(os.environ.get("REGISTRY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
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


def ensure_postgres_database() -> None:
    """Create this worker's PostgreSQL database when it does not exist yet (nothing to do in a serial run).

    Connects to the server's ``postgres`` database; a server that cannot be reached is left to ``require_server``.
    """
    if not WORKER:
        return
    import psycopg  # DBOS's driver: a synchronous connection, before any test's event loop exists
    from psycopg import sql

    url = make_url(POSTGRES_URL)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    try:
        connection = psycopg.connect(admin, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError:
        return
    with connection:
        exists = connection.execute("select 1 from pg_database where datname = %s", (url.database,)).fetchone()
        if exists is None:
            with suppress(psycopg.errors.DuplicateDatabase):
                connection.execute(sql.SQL("create database {}").format(sql.Identifier(str(url.database))))


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
