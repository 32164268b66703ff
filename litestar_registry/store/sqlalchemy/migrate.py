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
import logging
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path
from typing import Any

import anyio.to_thread
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

# Registers the provisioning and webhook read models' tables on our metadata, so the schema is built and compared
# with them.
import litestar_registry.provisioning.store.tables
import litestar_registry.webhooks.store.tables  # noqa: F401
from litestar_registry.store.sqlalchemy.models import TABLE_PREFIX, metadata

__all__ = (
    "MIGRATIONS_PATH",
    "VERSION_TABLE",
    "alembic_config",
    "current",
    "current_sync",
    "downgrade",
    "downgrade_sync",
    "ensure_schema",
    "head",
    "include_name",
    "include_object_on",
    "schema_diff",
    "stamp_sync",
    "upgrade",
    "upgrade_sync",
)

logger = logging.getLogger("litestar_registry.migrate")

MIGRATIONS_PATH = Path(__file__).parent / "migrations"
"""The Alembic script directory shipped in the package."""

VERSION_TABLE = f"{TABLE_PREFIX}alembic_version"
"""Where the registry's schema revision is kept: never the host's ``alembic_version``."""

_SCHEMA_LOCK = 0x7265_6769_7374_7279  # "registry" in ASCII: the advisory lock app instances take around schema setup


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic name filter: only the registry's tables, so autogenerate and comparisons ignore the host's tables."""
    if type_ == "table":
        return name is not None and name.startswith(TABLE_PREFIX) and name != VERSION_TABLE
    return True


def include_object_on(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Alembic object filter for ``dialect``: a model index built only on other dialects is not missing from this one.

    Such an index says so with ``Index.ddl_if`` (none does at present; the GIN indexes of revisions b7d3e5f1a9c2 to
    d5f9b3a7c2e4 were PostgreSQL-only).
    """

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        condition = getattr(obj, "_ddl_if", None)
        if type_ != "index" or reflected or condition is None or condition.dialect is None:
            return True
        wanted = condition.dialect
        return dialect == wanted if isinstance(wanted, str) else dialect in wanted

    return include_object


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


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str | None:
    """The newest revision the package ships."""
    return _scripts().get_current_head()


def schema_diff(connection: Connection) -> list[Any]:
    """How the registry's tables on ``connection`` differ from the models (Alembic's autogenerate comparison).

    Only the registry's tables are compared; an empty list means they match exactly, types included.
    """
    context = MigrationContext.configure(
        connection,
        opts={
            "include_name": include_name,
            "include_object": include_object_on(connection.dialect.name),
            "version_table": VERSION_TABLE,
            "compare_type": True,
        },
    )
    return list(compare_metadata(context, metadata))


def ensure_schema(connection: Connection) -> str | None:
    """Bring the registry's tables on ``connection`` to the newest revision; return the revision found before.

    What ``create_schema`` does at startup. A database without the registry's tables gets them from the models in one
    step and is stamped with the newest revision (the migrations build exactly that schema, as the tests check), so
    ``litestar registry db upgrade`` works on it later. A database at an older revision is migrated; one at the newest
    is left alone. Tables that exist without a recorded revision are stamped only if they match the models exactly.
    On PostgreSQL an advisory lock, held to the end of the caller's transaction, keeps app instances that start
    together from setting the schema up twice.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    found = context.get_current_revision()
    newest = head()
    if found == newest:
        return found
    if found is not None:
        logger.info("registry schema: migrating from %s to %s", found, newest)
        command.upgrade(alembic_config(connection=connection), "head")
        return found
    ours = [name for name in inspect(connection).get_table_names() if include_name(name, "table", None)]
    if not ours:
        metadata.create_all(connection)
    elif schema_diff(connection):
        raise RuntimeError(
            f"the registry's tables ({', '.join(sorted(ours))}) exist without a recorded revision and differ from "
            "this version's schema: migrate them by hand, then run 'litestar registry db stamp head'"
        )
    context.stamp(_scripts(), "head")
    return None


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


def stamp_sync(
    url: str, revision: str, *, engine_options: dict[str, Any] | None = None, sql: bool = False
) -> str | None:
    """Record ``revision`` as the registry's schema revision without running any migration; blocks.

    For tables that already match ``revision`` (made by hand, or restored from a dump without the version table).
    """
    return _run(command.stamp, url, revision, engine_options, sql)


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
