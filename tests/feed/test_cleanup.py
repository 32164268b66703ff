"""Streams and long polls share the process's one hub: nothing of a client is left once it is gone."""

from __future__ import annotations

import asyncio
import contextlib

from tests.feed.conftest import MakeLive, settled


async def test_clients_that_disconnect_leave_no_waiter_and_no_task(make_live: MakeLive) -> None:
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
            await live.register(f"svc-{round_}")
            for reader in readers:
                assert (await reader.event()).event == "service.registered"
        # The streams' connections are closed: their handlers are cancelled, their waits and generators end.
        await settled(lambda: hub.waiting == 0 and hub.watchers == 0)
        await settled(lambda: len(asyncio.all_tasks()) <= baseline)
    assert hub.tasks == hub_tasks
