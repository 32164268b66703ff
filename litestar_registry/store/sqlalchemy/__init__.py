"""The SQL backend: SQLite or PostgreSQL through SQLAlchemy and advanced-alchemy, with its own Alembic migrations."""

from __future__ import annotations

# First: it hides our tables from the host's Alembic autogenerate (and quiets Alembic's import-time logging).
from litestar_registry.store.sqlalchemy import autogenerate_guard as autogenerate_guard
from litestar_registry.store.sqlalchemy.models import BIND_KEY, metadata
from litestar_registry.store.sqlalchemy.store import SQLAlchemyServiceStore

__all__ = ("BIND_KEY", "SQLAlchemyServiceStore", "metadata")
