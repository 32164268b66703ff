"""litestar-registry: a service registry, keepalive and TTL expiry, mounted into any Litestar app by one plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = (
    "ManualClock",
    "MemoryServiceStore",
    "Registry",
    "RegistryConfig",
    "RegistryPlugin",
    "ServiceStore",
)

if TYPE_CHECKING:
    from litestar_registry.config import RegistryConfig
    from litestar_registry.core.clock import ManualClock
    from litestar_registry.core.registry import Registry
    from litestar_registry.plugin import RegistryPlugin
    from litestar_registry.store import MemoryServiceStore, ServiceStore

_LAZY = {
    "RegistryConfig": "litestar_registry.config",
    "ManualClock": "litestar_registry.core.clock",
    "Registry": "litestar_registry.core.registry",
    "RegistryPlugin": "litestar_registry.plugin",
    "MemoryServiceStore": "litestar_registry.store",
    "ServiceStore": "litestar_registry.store",
}


def __getattr__(name: str) -> Any:
    """Import public names on first use, so that ``import litestar_registry`` stays cheap."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'litestar_registry' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
