"""The SQL backend: SQLite or PostgreSQL through SQLAlchemy and advanced-alchemy, with its own Alembic migrations."""

from __future__ import annotations

from litestar_registry.store.sqlalchemy.models import BIND_KEY, metadata
from litestar_registry.store.sqlalchemy.store import SQLAlchemyServiceStore

__all__ = ("BIND_KEY", "SQLAlchemyServiceStore", "metadata")
