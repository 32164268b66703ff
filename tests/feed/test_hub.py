"""The hub alone, over the memory store's log: what the HTTP routes build on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from litestar_registry.core.events import ChangeEvent, Topic, service_draft
from litestar_registry.core.feed import FeedGap, FeedHub, FeedItem, Opened, Ping
from litestar_registry.core.models import ServiceStatus
from litestar_registry.store import ServiceStore
from litestar_registry.store.memory import MemoryServiceStore
from litestar_registry.wakeup import ChannelsWakeup
from tests.backends import REDIS_URL, open_store, require_server, wipe
from tests.records import first_version, make_record


async def add(store: ServiceStore, hub: FeedHub, slug: str) -> None:
    """A write that appends one event, announced as the registry announces its writes."""
    record = make_record(slug, status=ServiceStatus.ACTIVE)
    draft = service_draft(Topic.SERVICE_REGISTERED, record, record.registered_at)
    await store.create(record, first_version(record), events=[draft])
    await hub.notify()


async def collect(items: list[FeedItem], source: AsyncIterator[FeedItem]) -> None:
    async for item in source:
        items.append(item)


async def test_stopping_the_hub_ends_every_follower_and_its_wait() -> None:
    store = MemoryServiceStore()
    await store.open()
    hub = FeedHub(store, poll_interval=0.05)
    await hub.start()
    items: list[FeedItem] = []
    follower = asyncio.create_task(collect(items, hub.follow(None, ping_interval=60)))
    waiter = asyncio.create_task(hub.wait(0, 60))
    await asyncio.sleep(0.05)
    await add(store, hub, "billing")
    await asyncio.sleep(0.1)
    assert [type(item) for item in items] == [Opened, ChangeEvent]
    await hub.stop()
    async with asyncio.timeout(1):
        await follower
        assert await waiter is True  # the event came before the stop
    assert (hub.watchers, hub.waiting, hub.tasks) == (0, 0, 0)


async def test_wait_answers_whether_the_log_moved_within_the_time() -> None:
    store = MemoryServiceStore()
    hub = FeedHub(store, poll_interval=0.05)
    await hub.start()
    try:
        assert await hub.wait(0, 0.05) is False
        async with hub.watching():
            waiting = asyncio.create_task(hub.wait(0, 5))
            await asyncio.sleep(0.02)
            assert hub.waiting == 1
            await add(store, hub, "billing")
            assert await asyncio.wait_for(waiting, 1) is True
        assert await hub.wait(0, 5) is True  # already beyond: at once
        assert hub.waiting == 0
    finally:
        await hub.stop()


async def test_a_cursor_behind_retention_yields_a_gap_then_the_rest() -> None:
    store = MemoryServiceStore()
    hub = FeedHub(store, poll_interval=0.05)
    await hub.start()
    try:
        for slug in ("a", "b", "c"):
            await add(store, hub, slug)
        await store.trim_events(keep_after=1)
        stream = hub.follow(0, ping_interval=0.1)
        try:
            assert await anext(stream) == Opened(after=1)
            assert await anext(stream) == FeedGap(after=0, resume_after=1, reason="retention")
            assert [getattr(await anext(stream), "subject", None) for _ in range(2)] == ["b", "c"]
            assert isinstance(await anext(stream), Ping)
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()
        assert hub.watchers == 0
    finally:
        await hub.stop()


async def test_a_follower_that_retention_overtakes_while_it_follows_is_told() -> None:
    store = MemoryServiceStore()
    hub = FeedHub(store, poll_interval=0.05, batch_size=2)
    await hub.start()
    try:
        for slug in ("a", "b", "c", "d", "e"):
            await add(store, hub, slug)
        stream = hub.follow(0, ping_interval=5)
        try:
            assert await anext(stream) == Opened(after=0)
            assert [getattr(await anext(stream), "id", None) for _ in range(2)] == [1, 2]
            await store.trim_events(keep_after=3)  # while the follower is at 2
            assert await anext(stream) == FeedGap(after=2, resume_after=3, reason="retention")
            assert [getattr(await anext(stream), "id", None) for _ in range(2)] == [4, 5]
        finally:
            await stream.aclose()
    finally:
        await hub.stop()


async def test_the_hub_stops_at_once_while_it_publishes_through_redis(caplog: pytest.LogCaptureFixture) -> None:
    """redis-py returns normally from a publish whose task was cancelled: the hub's loop must not wait again."""
    require_server("redis")
    store = MemoryServiceStore()
    for attempt in range(10):
        hub = FeedHub(store, poll_interval=1.0, wakeup=ChannelsWakeup(REDIS_URL))
        await hub.start()
        await hub.notify()
        for _ in range(attempt):  # stop at a different point of the publish each time
            await asyncio.sleep(0)
        started = time.monotonic()
        await hub.stop()
        assert time.monotonic() - started < 1.0
    assert "did not stop" not in caplog.text


async def test_a_log_that_goes_back_is_a_gap_and_the_feed_goes_on(tmp_path: Path) -> None:
    """Ids are never reused; only an emptied store goes back, and then followers and the hub follow it down."""
    async with open_store("sqlite", tmp_path) as store:
        hub = FeedHub(store, poll_interval=0.05)
        await hub.start()
        try:
            for slug in ("a", "b", "c"):
                await add(store, hub, slug)
            stream = hub.follow(None, ping_interval=0.2)
            try:
                assert await anext(stream) == Opened(after=3)
                await wipe(store)  # the counter starts again
                await add(store, hub, "d")
                assert await anext(stream) == FeedGap(after=3, resume_after=1, reason="unknown")
                await add(store, hub, "e")
                event = await anext(stream)
                assert isinstance(event, ChangeEvent)
                assert (event.id, event.subject) == (2, "e")
                assert hub.last_id == 2
            finally:
                await stream.aclose()
        finally:
            await hub.stop()
