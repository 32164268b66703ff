"""The SQL backend: SQLite or PostgreSQL through SQLAlchemy and advanced-alchemy, with its own Alembic migrations."""

from __future__ import annotations

import logging

from litestar_registry.store.sqlalchemy.models import BIND_KEY, metadata
from litestar_registry.store.sqlalchemy.store import SQLAlchemyServiceStore

__all__ = ("BIND_KEY", "SQLAlchemyServiceStore", "metadata")

# Importing alembic.autogenerate (which the migrations do) logs an INFO line per built-in plugin since Alembic 1.16:
# noise in an app's log and in every `litestar registry db` command. Set here, before any of our alembic imports;
# only that logger is quieted, so what a migration does ("Running upgrade ...") still shows.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
