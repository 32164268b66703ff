"""Streams and long polls share the process's one hub: nothing of a client is left once it is gone."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import redis.asyncio as aioredis

from litestar_registry.wakeup import CHANNEL
from tests.backends import POSTGRES_URL, REDIS_URL
from tests.feed.conftest import MakeLive, settled


async def server_subscriptions(backend: str) -> int | None:
    """How many subscriptions to the feed's channel the server counts (``None``: a store without channels)."""
    if backend == "redis":
        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            db = client.connection_pool.connection_kwargs.get("db", 0)
            ((_, count),) = await client.pubsub_numsub(f"{CHANNEL}:{db}")
            return int(count)
        finally:
            await client.aclose()
    if backend == "postgres":
        connection = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            return int(
                await connection.fetchval(
                    "select count(*) from pg_stat_activity where datname = current_database() and query = $1",
                    f'LISTEN "{CHANNEL}"',
                )
            )
        finally:
            await connection.close()
    return None


async def test_clients_that_disconnect_leave_no_waiter_and_no_task(make_live: MakeLive, backend: str) -> None:
    live = await make_live(feed_poll_interval_seconds=0.05)
    hub = live.hub
    await live.client.get("/api/v1/registry/services", headers={"Authorization": "Bearer key-a-0123456789abcdef"})
    baseline = len(asyncio.all_tasks())
    hub_tasks = hub.tasks
    for round_ in range(2):
        async with contextlib.AsyncExitStack() as stack:
            readers = [await stack.enter_async_context(live.stream()) for _ in range(20)]
            for reader in readers:
                await reader.opened()
            await settled(lambda: hub.waiting == 20)
            assert hub.watchers == 20
            assert hub.tasks == hub_tasks  # no task per client in the hub
            assert await server_subscriptions(backend) in (None, 1)  # one per process, not one per client
            await live.register(f"svc-{round_}")
            for reader in readers:
                assert (await reader.event()).event == "service.registered"
        # The streams' connections are closed: their handlers are cancelled, their waits and generators end.
        await settled(lambda: hub.waiting == 0 and hub.watchers == 0)
        await settled(lambda: len(asyncio.all_tasks()) <= baseline)
    assert hub.tasks == hub_tasks
