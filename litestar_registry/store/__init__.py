"""Stores behind one protocol, chosen by a URL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar_registry.store.base import Advance, ServiceStore
from litestar_registry.store.memory import MemoryServiceStore

if TYPE_CHECKING:
    from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig

__all__ = ("Advance", "MemoryServiceStore", "ServiceStore", "StoreConfigurationError", "create_store")


class StoreConfigurationError(ValueError):
    """The store URL names no backend we have, or one whose driver is not installed."""


def create_store(
    url: str, *, create_schema: bool = False, sqlalchemy_config: SQLAlchemyAsyncConfig | None = None, **options: Any
) -> ServiceStore:
    """Return an unopened store for ``url``: ``memory://``, a SQLAlchemy async URL, or ``redis://``/``valkey://``.

    Heavy imports happen here, not at import time, so that importing the plugin stays cheap.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if sqlalchemy_config is not None:
        from litestar_registry.store.sqlalchemy import SQLAlchemyServiceStore

        return SQLAlchemyServiceStore(config=sqlalchemy_config, create_schema=create_schema, **options)
    if scheme == "memory":
        return MemoryServiceStore()
    if scheme in {"redis", "rediss", "valkey", "valkeys", "unix"}:
        try:
            from litestar_registry.store.redis import RedisServiceStore
        except ImportError as exc:
            if exc.name is None or exc.name.partition(".")[0] != "redis":
                raise
            raise StoreConfigurationError(
                f"store URL {url!r} needs the redis client, which is not installed: "
                "pip install 'litestar-registry[redis]'"
            ) from exc
        return RedisServiceStore(url, **options)  # valkey:// and valkeys:// are mapped to redis-py's schemes there
    if scheme.startswith(("sqlite", "postgresql", "postgres")):
        if scheme in {"sqlite", "postgresql", "postgres"} or scheme.endswith(("+psycopg2", "+pysqlite")):
            raise StoreConfigurationError(
                f"store URL {url!r} names a synchronous driver: use sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        _require_driver(scheme)
        from litestar_registry.store.sqlalchemy import SQLAlchemyServiceStore

        return SQLAlchemyServiceStore(url=url, create_schema=create_schema, **options)
    raise StoreConfigurationError(
        f"store URL {url!r} names no known backend: expected memory://, sqlite+aiosqlite:///path, "
        "postgresql+asyncpg://..., redis:// or valkey://"
    )


def _require_driver(scheme: str) -> None:
    driver = scheme.partition("+")[2]
    modules = {"asyncpg": ("asyncpg", "postgres"), "aiosqlite": ("aiosqlite", "")}
    if driver in modules:
        module, extra = modules[driver]
        try:
            __import__(module)
        except ImportError as exc:  # pragma: no cover - depends on the install
            hint = f"pip install 'litestar-registry[{extra}]'" if extra else f"pip install {module}"
            raise StoreConfigurationError(f"the {module} driver is not installed: {hint}") from exc
