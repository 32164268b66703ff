"""Several app instances sharing one store: every instance's changes reach every instance's watchers.

Two apps, each with its own plugin and hub, served by their own uvicorn in this process, stand for two processes.
With channels, the poll interval is set far above what the test waits, so only a wake-up can explain the speed.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.api.conftest import A
from tests.feed.conftest import SERVICES, MakeLive
from tests.feed.test_cleanup import server_subscriptions

SLOW_POLL = 30.0


@pytest.mark.parametrize("backend", ["postgres", "redis"])
async def test_a_stream_on_one_instance_sees_a_registration_made_through_another_at_once(
    make_live: MakeLive, backend: str
) -> None:
    one = await make_live(feed_poll_interval_seconds=SLOW_POLL)
    two = await make_live(feed_poll_interval_seconds=SLOW_POLL)
    assert one.hub.wakeup is not None
    assert two.hub.wakeup is not None
    assert (one.hub.wakeup.subscriptions, two.hub.wakeup.subscriptions) == (1, 1)
    assert await server_subscriptions(backend) == 2  # one per instance
    latencies = []
    async with one.stream() as reader:
        await reader.opened()
        for index in range(5):
            started = time.monotonic()
            await two.register(f"svc-{index}")
            event = await reader.event(within=SLOW_POLL / 3)
            latencies.append(time.monotonic() - started)
            assert (event.event, f'"subject":"svc-{index}"' in (event.data or "")) == ("service.registered", True)
    assert max(latencies) < 1.0, latencies  # a wake-up, not the 30 s poll
    # And the other way round, through a long poll.
    index = int((await two.client.get(SERVICES, headers=A)).headers["X-Registry-Index"])
    poll = asyncio.create_task(two.client.get(SERVICES, headers=A, params={"index": index, "wait": "20s"}))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await one.register("ledger")
    answer = await asyncio.wait_for(poll, SLOW_POLL / 3)
    assert time.monotonic() - started < 1.0
    assert int(answer.headers["X-Registry-Index"]) > index
    assert "ledger" in [service["slug"] for service in answer.json()["data"]]


@pytest.mark.parametrize(
    ("backend", "settings"),
    [("sqlite", {}), ("postgres", {"feed_channels": False})],
    ids=["sqlite file shared", "postgres without channels"],
)
async def test_without_channels_the_poll_brings_the_other_instances_changes(
    make_live: MakeLive, settings: dict[str, object]
) -> None:
    one = await make_live(feed_poll_interval_seconds=0.2, **settings)
    two = await make_live(feed_poll_interval_seconds=0.2, **settings)
    assert (one.hub.wakeup, two.hub.wakeup) == (None, None)
    async with one.stream() as reader:
        await reader.opened()
        started = time.monotonic()
        await two.register("billing")
        assert (await reader.event(within=3)).event == "service.registered"
        assert time.monotonic() - started < 1.5
