"""What every read model kept in SQL beside the registry (provisioning, webhooks) does with its engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar, cast

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from litestar_registry.store.sqlalchemy.store import create_store_engine, prepare_engine, transaction

__all__ = ("SQLReadModel",)


class SQLReadModel:
    """A store's engine, its schema at :meth:`open`, and its transactions (SQLite or PostgreSQL).

    Give ``url`` (the store creates its engine in :meth:`open` and disposes it in :meth:`close`) or ``engine`` (shared,
    for instance the registry store's; never disposed here).
    """

    kind: ClassVar[str] = "read model"
    """What the store keeps, for its error messages."""

    def __init__(
        self,
        url: str | None = None,
        *,
        engine: AsyncEngine | None = None,
        create_schema: bool = False,
        engine_options: dict[str, Any] | None = None,
    ) -> None:
        """Configure the store; nothing connects before :meth:`open`.

        Args:
            url: An async SQLAlchemy URL (``sqlite+aiosqlite:///path``, ``postgresql+asyncpg://...``).
            engine: An engine to share instead of ``url``.
            create_schema: Bring the registry's tables (these included) to the newest revision at :meth:`open`.
            engine_options: Keyword arguments for ``create_async_engine``; only with ``url``.
        """
        if (url is None) == (engine is None):
            raise ValueError(f"{type(self).__name__} takes exactly one of 'url' or 'engine'")
        self._url = url
        self._shared = engine
        self._create_schema = create_schema
        self._engine_options = dict(engine_options or {})
        self._engine: AsyncEngine | None = None
        self._writes: asyncio.Lock | None = None

    @property
    def engine(self) -> AsyncEngine:
        """The engine in use; only between :meth:`open` and :meth:`close`."""
        if self._engine is None:
            raise RuntimeError("the store is not open")
        return self._engine

    async def open(self) -> None:
        """Create (or take) the engine; with ``create_schema``, bring the registry's tables to the newest revision."""
        if self._engine is not None:
            return
        engine = self._shared or create_store_engine(cast("str", self._url), **self._engine_options)
        await prepare_engine(
            engine,
            create_schema=self._create_schema,
            owned=self._shared is None,
            refuse=lambda name: ValueError(f"the SQL {self.kind} store supports sqlite and postgresql, not {name!r}"),
        )
        self._engine = engine
        self._writes = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    async def close(self) -> None:
        """Dispose the engine the store created; a shared one stays with its owner."""
        engine, self._engine = self._engine, None
        if engine is not None and self._shared is None:
            await engine.dispose()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction; on SQLite, one at a time per store.

        A real one also on the registry's own SQLite engine, whose connections start in autocommit (there
        ``engine.begin()`` would run every statement on its own).
        """
        if self._writes is None:
            async with transaction(self.engine) as conn:
                yield conn
            return
        async with self._writes, transaction(self.engine) as conn:
            yield conn

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn
