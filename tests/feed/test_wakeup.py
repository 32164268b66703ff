"""Wake-ups between instances through Litestar's channels backends, on the real servers (Redis, PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from unittest import mock

import asyncpg
import pytest
import redis.asyncio as aioredis

from litestar_registry.wakeup import ChannelsWakeup, wakeup_url_problem
from tests.backends import POSTGRES_URL, REDIS_URL, require_server

URLS = {"redis": REDIS_URL, "postgres": POSTGRES_URL, "postgres-psycopg": POSTGRES_URL}


@pytest.fixture(params=list(URLS))
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A channels URL per backend; ``postgres-psycopg`` hides asyncpg, so that psycopg's backend is the one used."""
    require_server(str(request.param).partition("-")[0])
    if request.param != "postgres-psycopg":
        yield URLS[request.param]
        return
    with mock.patch.dict(sys.modules, {"asyncpg": None}):  # import asyncpg now raises ImportError
        yield URLS[request.param]


class Counter:
    """Counts the wake-ups one instance receives, from a task that consumes its ``signals()``."""

    def __init__(self, wakeup: ChannelsWakeup) -> None:
        self.count = 0
        self.arrived = asyncio.Event()
        self._task = asyncio.create_task(self._run(wakeup))

    async def _run(self, wakeup: ChannelsWakeup) -> None:
        async for _ in wakeup.signals():
            self.count += 1
            self.arrived.set()

    async def next(self, within: float = 3.0) -> None:
        async with asyncio.timeout(within):
            await self.arrived.wait()
        self.arrived.clear()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def opened(url: str) -> AsyncIterator[tuple[ChannelsWakeup, Counter]]:
    wakeup = ChannelsWakeup(url)
    await wakeup.open()
    counter = Counter(wakeup)
    try:
        yield wakeup, counter
    finally:
        await counter.stop()
        await wakeup.close()


async def test_a_publication_wakes_the_other_instance_and_not_the_publisher(
    url: str, request: pytest.FixtureRequest
) -> None:
    async with opened(url) as (one, one_heard), opened(url) as (two, two_heard):
        assert (one.subscriptions, two.subscriptions) == (1, 1)
        backend = type(one._backend).__name__
        expected = {"redis": "PubSubBackend", "postgres": "NotifyBackend"}.get(
            request.node.callspec.params["url"], "PsycoPgChannelsBackend"
        )
        assert backend == expected
        await one.publish()
        await two_heard.next()
        await two.publish()
        await one_heard.next()
        await asyncio.sleep(0.2)  # anything else would have arrived by now
        assert (one_heard.count, two_heard.count) == (1, 1)
    assert (one.subscriptions, two.subscriptions) == (0, 0)


async def test_the_listener_reconnects_when_the_server_drops_it(url: str) -> None:
    name = f"registry-feed-test-{uuid.uuid4().hex[:8]}"
    option = "client_name" if url.startswith("redis") else "application_name"
    named = f"{url}{'&' if '?' in url else '?'}{option}={name}"
    async with opened(url) as (one, _), opened(named) as (two, two_heard):
        await _drop_connections(url, name)
        # Wake-ups published until the listener is back may be lost (the feed's poll covers them); then they arrive.
        async with asyncio.timeout(15):
            while two_heard.count == 0:
                await one.publish()
                with contextlib.suppress(TimeoutError):
                    await two_heard.next(within=0.5)
        assert two.subscriptions == 1


async def _drop_connections(url: str, name: str) -> None:
    """Make the server close the connections named ``name`` (this test's only), as a restart or a failover would."""
    if url.startswith("redis"):
        client = aioredis.Redis.from_url(url)
        try:
            ours = [entry["id"] for entry in await client.client_list() if entry.get("name") == name]
            assert ours
            for client_id in ours:
                await client.client_kill_filter(_id=client_id)
        finally:
            await client.aclose()
        return
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        killed = await connection.fetchval(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = $1", name
        )
        assert killed >= 1
    finally:
        await connection.close()


def test_only_redis_and_postgres_urls_carry_wakeups() -> None:
    assert wakeup_url_problem("redis://127.0.0.1:6379/3") is None
    assert wakeup_url_problem("valkeys://cache:6380/0") is None
    assert wakeup_url_problem("postgresql+asyncpg://app@db/registry") is None
    assert wakeup_url_problem("sqlite+aiosqlite:///registry.db") is not None
    assert wakeup_url_problem("memory://") is not None
    with pytest.raises(ValueError, match="channels URL 'mysql://app:\\*\\*\\*@db/x'"):
        ChannelsWakeup("mysql://app:secret@db/x")
