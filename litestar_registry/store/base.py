"""The store protocol, re-exported: it belongs to the core (:mod:`litestar_registry.core.ports`).

Kept so that ``from litestar_registry.store.base import ServiceStore`` keeps working.
"""

from __future__ import annotations

from litestar_registry.core.ports import Advance, ServiceStore

__all__ = ("Advance", "ServiceStore")
