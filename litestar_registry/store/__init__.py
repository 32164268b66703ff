"""Stores behind one protocol, chosen by a URL."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from litestar_registry.core.ports import Advance, ServiceStore
from litestar_registry.store.memory import MemoryServiceStore

if TYPE_CHECKING:
    from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig

__all__ = (
    "Advance",
    "MemoryServiceStore",
    "ServiceStore",
    "StoreConfigurationError",
    "create_store",
    "mask_url",
    "store_url_problem",
)

STORE_URL_FORMS = (
    "memory://, sqlite+aiosqlite:///path/to/file.db, postgresql+asyncpg://user:password@host:5432/database, "
    "redis://host:6379/0 or valkey://host:6379/0"
)
"""Every form of store URL, as error messages list them."""
_SQL_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
"""The async driver of each SQL dialect we support."""
_SQL_ALIASES = {"postgres": "postgresql", "sqlite3": "sqlite"}
"""Dialect names SQLAlchemy does not know (it dropped ``postgres://`` in 1.4), and the one each means."""
_REDIS_SCHEMES = frozenset({"redis", "rediss", "valkey", "valkeys", "unix"})


class StoreConfigurationError(ValueError):
    """The store URL names no backend we have, or one whose driver is not installed."""


def mask_url(url: str) -> str:
    """``url`` with its password (in the authority, or a ``password=`` query parameter) shown as ``***``.

    For messages and logs: a store URL may carry the database's password.
    """
    scheme, separator, rest = url.partition("://")
    if separator:
        end = min((index for index in map(rest.find, "/?#") if index >= 0), default=len(rest))
        userinfo, at, host = rest[:end].rpartition("@")
        user, colon, _ = userinfo.partition(":")
        if at and colon:
            rest = f"{user}:***@{host}{rest[end:]}"
    return re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", f"{scheme}{separator}{rest}")


def store_url_problem(url: str) -> str | None:
    """What no store could do with ``url``, as ``expected ...``; ``None`` when some store takes it.

    Only the URL's text is read (no I/O, no driver import), so a configuration can be checked when it is built,
    before SQLAlchemy or redis-py would fail on it deep inside a request or at startup.
    """
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator or not scheme:
        return f"expected a URL: {STORE_URL_FORMS}"
    if scheme == "memory":
        return None
    dialect, plus, driver = scheme.partition("+")
    if scheme not in _REDIS_SCHEMES and dialect not in _SQL_DRIVERS and dialect not in _SQL_ALIASES:
        return f"expected one of {STORE_URL_FORMS}; no store speaks {scheme}://"
    if dialect in _SQL_ALIASES:
        right = _SQL_ALIASES[dialect]
        return f"expected {right}+{_SQL_DRIVERS[right]}://...: SQLAlchemy has no dialect {dialect!r}"
    if dialect in _SQL_DRIVERS and driver != _SQL_DRIVERS[dialect]:
        wanted = f"{dialect}+{_SQL_DRIVERS[dialect]}://"
        if not plus:
            return f"expected {wanted}...: {scheme}:// names no driver, and the store needs an async one"
        return f"expected {wanted}...: the SQL store's driver for {dialect} is {_SQL_DRIVERS[dialect]}, not {driver!r}"
    if dialect == "sqlite" and not rest.startswith("/"):
        return "expected sqlite+aiosqlite:///relative/path.db or sqlite+aiosqlite:////absolute/path.db"
    if scheme != "unix":
        try:
            urlsplit(url).port  # noqa: B018 - reading the port is the check
        except ValueError as exc:
            return f"expected a port number from 1 to 65535 after the host ({exc})"
    return None


def create_store(
    url: str,
    *,
    create_schema: bool = False,
    sqlalchemy_config: SQLAlchemyAsyncConfig | None = None,
    pool_size: int | None = None,
    **options: Any,
) -> ServiceStore:
    """Return an unopened store for ``url``: ``memory://``, a SQLAlchemy async URL, or ``redis://``/``valkey://``.

    Heavy imports happen here, not at import time, so that importing the plugin stays cheap. ``pool_size`` bounds the
    connections the store opens (requests beyond it wait for one); ``None`` keeps each backend's default: Redis 50
    (or ``?max_connections=`` in the URL), PostgreSQL 20 (or ``?pool_size=``), SQLite SQLAlchemy's 5 plus 10 overflow
    (or ``?pool_size=``). It does not apply to memory, nor to an engine borrowed through ``sqlalchemy_config``.

    Raises:
        StoreConfigurationError: no store takes ``url`` (see :func:`store_url_problem`), or its driver is not
            installed; the message masks the URL's password.
    """
    if sqlalchemy_config is not None:
        from litestar_registry.store.sqlalchemy import SQLAlchemyServiceStore

        return SQLAlchemyServiceStore(config=sqlalchemy_config, create_schema=create_schema, **options)
    if (problem := store_url_problem(url)) is not None:
        raise StoreConfigurationError(f"store URL {mask_url(url)!r}: {problem}")
    scheme = url.split("://", 1)[0].lower()
    if scheme == "memory":
        return MemoryServiceStore()
    if scheme in _REDIS_SCHEMES:
        try:
            from litestar_registry.store.redis import RedisServiceStore
        except ImportError as exc:
            if exc.name is None or exc.name.partition(".")[0] != "redis":
                raise
            raise StoreConfigurationError(
                f"store URL {mask_url(url)!r} needs the redis client, which is not installed: "
                "pip install 'litestar-registry[redis]'"
            ) from exc
        if pool_size is not None:
            options["max_connections"] = pool_size
        return RedisServiceStore(url, **options)  # valkey:// and valkeys:// are mapped to redis-py's schemes there
    _require_driver(scheme)
    from litestar_registry.store.sqlalchemy import SQLAlchemyServiceStore

    if pool_size is not None:
        options["pool_size"] = pool_size
    return SQLAlchemyServiceStore(url=url, create_schema=create_schema, **options)


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
