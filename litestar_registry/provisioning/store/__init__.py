"""Where the provisioning read model is kept: the protocol, in memory, and SQL (SQLite, PostgreSQL).

The SQL store is imported from :mod:`.sqlalchemy` directly, so that the memory store needs no SQLAlchemy.
"""

from __future__ import annotations

from litestar_registry.provisioning.store.base import Applied, ProvisioningStore
from litestar_registry.provisioning.store.memory import MemoryProvisioningStore

__all__ = ("Applied", "MemoryProvisioningStore", "ProvisioningStore")
