"""The registry's own Alembic migrations: upgrade, downgrade and inspect the schema of the SQL store.

The migrations ship inside the package (``migrations/``), keep their version in ``registry_alembic_version`` and
touch only the registry's tables, so they live beside the host's own Alembic history in one database without either
seeing the other. The async functions are for async code (an app's startup, tests): Alembic runs its own event loop,
so they run it in a worker thread. The ``*_sync`` cores are for synchronous callers such as a CLI command.

Example:
    ``await upgrade("postgresql+asyncpg://app@db/app")`` brings the registry's tables to the newest revision.
"""

from __future__ import annotations

import asyncio
import io
from functools import partial
from pathlib import Path
from typing import Any

import anyio.to_thread
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from litestar_registry.store.sqlalchemy.models import TABLE_PREFIX

__all__ = (
    "MIGRATIONS_PATH",
    "VERSION_TABLE",
    "alembic_config",
    "current",
    "current_sync",
    "downgrade",
    "downgrade_sync",
    "head",
    "include_name",
    "upgrade",
    "upgrade_sync",
)

MIGRATIONS_PATH = Path(__file__).parent / "migrations"
"""The Alembic script directory shipped in the package."""

VERSION_TABLE = f"{TABLE_PREFIX}alembic_version"
"""Where the registry's schema revision is kept: never the host's ``alembic_version``."""


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic name filter: only the registry's tables, so autogenerate and comparisons ignore the host's tables."""
    if type_ == "table":
        return name is not None and name.startswith(TABLE_PREFIX) and name != VERSION_TABLE
    return True


def alembic_config(
    url: str | None = None,
    *,
    engine_options: dict[str, Any] | None = None,
    connection: Connection | None = None,
    output: io.StringIO | None = None,
) -> Config:
    """An Alembic config for the registry's migrations, without an ini file.

    Args:
        url: Async SQLAlchemy URL of the database (``sqlite+aiosqlite:///...``, ``postgresql+asyncpg://...``).
        engine_options: Keyword arguments for ``create_async_engine`` (``connect_args`` and the like).
        connection: A synchronous connection to run on instead of ``url`` (inside ``AsyncConnection.run_sync``).
        output: Where offline (``sql=True``) runs write their SQL.
    """
    config = Config(output_buffer=output) if output is not None else Config()
    config.set_main_option("script_location", str(MIGRATIONS_PATH))
    config.set_main_option("path_separator", "os")
    config.attributes["url"] = url
    config.attributes["engine_options"] = dict(engine_options or {})
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str | None:
    """The newest revision the package ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade_sync(
    url: str, revision: str = "head", *, engine_options: dict[str, Any] | None = None, sql: bool = False
) -> str | None:
    """Upgrade the registry's tables in the database at ``url`` to ``revision``; blocks, and runs its own loop.

    With ``sql``, nothing is executed: the SQL script is returned instead (offline mode; ``revision`` may be a
    ``from:to`` range).
    """
    return _run(command.upgrade, url, revision, engine_options, sql)


def downgrade_sync(
    url: str, revision: str, *, engine_options: dict[str, Any] | None = None, sql: bool = False
) -> str | None:
    """Downgrade the registry's tables to ``revision`` (``"base"`` removes them); blocks, and runs its own loop.

    With ``sql``, nothing is executed: the SQL script is returned instead (``revision`` must then be a ``from:to``
    range, such as ``"head:base"``).
    """
    return _run(command.downgrade, url, revision, engine_options, sql)


def current_sync(url: str, *, engine_options: dict[str, Any] | None = None) -> str | None:
    """The registry's schema revision in the database at ``url`` (``None`` before the first upgrade); blocks."""
    return asyncio.run(current(url, engine_options=engine_options))


async def upgrade(url: str, revision: str = "head", *, engine_options: dict[str, Any] | None = None) -> None:
    """Upgrade the registry's tables to ``revision`` (default: the newest), from async code."""
    await anyio.to_thread.run_sync(partial(upgrade_sync, url, revision, engine_options=engine_options))


async def downgrade(url: str, revision: str, *, engine_options: dict[str, Any] | None = None) -> None:
    """Downgrade the registry's tables to ``revision`` (``"base"`` removes them), from async code."""
    await anyio.to_thread.run_sync(partial(downgrade_sync, url, revision, engine_options=engine_options))


async def current(url: str, *, engine_options: dict[str, Any] | None = None) -> str | None:
    """The registry's schema revision in the database at ``url``, or ``None`` before the first upgrade."""
    engine = create_async_engine(url, poolclass=pool.NullPool, **dict(engine_options or {}))
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current_revision)
    finally:
        await engine.dispose()


def _current_revision(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def _run(action: Any, url: str, revision: str, engine_options: dict[str, Any] | None, sql: bool) -> str | None:
    output = io.StringIO() if sql else None
    action(alembic_config(url, engine_options=engine_options, output=output), revision, sql=sql)
    return output.getvalue() if output is not None else None
