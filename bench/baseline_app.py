"""The bare reference the registry is measured against: Litestar handlers doing the least store work each operation
needs, served by the same server as the example app.

    GET  /noop           200, a small JSON dict: the framework and server floor, no I/O
    PUT  /ping/{id}      204, one Redis ``SET key value EX ttl`` (the floor of a TTL ping or a heartbeat on Redis)
    POST /register       201, a msgspec Struct body validated, one Redis ``SET`` of its JSON, the record echoed back
    PUT  /sqlping/{id}   204, one SQLAlchemy async ``UPDATE pings SET seen_us = :now WHERE id = :id`` on an autocommit
                         connection (the floor of a heartbeat on SQL); 404 when no row matched

``BENCH_REDIS_URL`` turns the Redis routes on, ``BENCH_SQL_URL`` the SQL one; at startup the table ``pings`` is
(re)created with ids ``svc-00001`` .. ``svc-{BENCH_ID_SPACE}``. SQLite gets WAL, ``synchronous=NORMAL`` and one pooled
connection (its single writer); PostgreSQL gets SQLAlchemy's default pool. Adapted from the reference harness in
``../shared/bench`` (``baseline_app.py``, ``baseline_sql_app.py``).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import msgspec
from litestar import Litestar, get, post, put
from litestar.datastructures import State
from litestar.exceptions import NotFoundException

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "")
SQL_URL = os.environ.get("BENCH_SQL_URL", "")
ID_SPACE = int(os.environ.get("BENCH_ID_SPACE", "10000"))
TTL = 3600

_encode = msgspec.json.Encoder().encode


class ServiceRegistration(msgspec.Struct, kw_only=True):
    """A registration of about ten fields, typical of a service registry."""

    slug: str
    name: str
    version: str
    url: str
    description: str = ""
    tags: list[str] = msgspec.field(default_factory=list)
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    owner: str | None = None
    health_check_url: str | None = None
    weight: int = 1
    ttl_seconds: int = TTL


async def _open_redis(stack: AsyncExitStack, state: State) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    stack.push_async_callback(client.aclose)
    await client.ping()
    state.redis = client


async def _open_sql(stack: AsyncExitStack, state: State) -> None:
    from sqlalchemy import event, text
    from sqlalchemy.ext.asyncio import create_async_engine

    sqlite = SQL_URL.startswith("sqlite")
    engine = create_async_engine(SQL_URL, **({"pool_size": 1, "max_overflow": 0} if sqlite else {}))
    stack.push_async_callback(engine.dispose)
    if sqlite:

        @event.listens_for(engine.sync_engine, "connect")
        def _wal(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS pings"))
        await conn.execute(text("CREATE TABLE pings (id VARCHAR(64) PRIMARY KEY, seen_us BIGINT NOT NULL)"))
        await conn.execute(
            text("INSERT INTO pings (id, seen_us) VALUES (:id, 0)"),
            [{"id": f"svc-{i:05d}"} for i in range(1, ID_SPACE + 1)],
        )
    state.engine = engine
    state.sql_update = text("UPDATE pings SET seen_us = :now WHERE id = :id")


@asynccontextmanager
async def stores(app: Litestar) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        if REDIS_URL:
            await _open_redis(stack, app.state)
        if SQL_URL:
            await _open_sql(stack, app.state)
        yield


@get("/noop", sync_to_thread=False)
def noop() -> dict[str, str]:
    return {"status": "ok"}


@put("/ping/{id:str}", status_code=204)
async def ping(id: str, state: State) -> None:
    await state.redis.set(f"ping:{id}", int(time.time()), ex=TTL)


@post("/register", status_code=201)
async def register(data: ServiceRegistration, state: State) -> ServiceRegistration:
    await state.redis.set(f"svc:{data.slug}", _encode(data), ex=TTL)
    return data


@put("/sqlping/{id:str}", status_code=204)
async def sqlping(id: str, state: State) -> None:
    async with state.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        result = await conn.execute(state.sql_update, {"now": int(time.time() * 1e6), "id": id})
    if result.rowcount == 0:
        raise NotFoundException()


app = Litestar(route_handlers=[noop, ping, register, sqlping], lifespan=[stores], debug=False)
