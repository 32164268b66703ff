"""The example app in its own process: its event stream, and a shutdown that open streams do not hold up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

from tests.e2e.conftest import Server
from tests.feed.conftest import EventReader

AUTH = {"Authorization": "Bearer demo-service-key"}


async def test_a_stream_ends_within_its_lifetime_when_the_server_shuts_down(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(feed_stream_max_seconds="1")
    assert server.process is not None
    async with (
        httpx.AsyncClient(base_url=server.base_url, timeout=10) as client,
        client.stream("GET", "/api/v1/registry/stream", headers=AUTH) as response,
    ):
        reader = EventReader(response)
        await reader.opened()
        body = {"slug": "streamed", "name": "Streamed", "version": "1"}
        assert (await client.post("/api/v1/registry/register", json=body, headers=AUTH)).status_code == 201
        event = await reader.event()
        assert (event.event, '"subject":"streamed"' in (event.data or "")) == ("service.registered", True)
        # uvicorn waits for open responses before it stops: the stream's lifetime bounds that wait.
        started = time.monotonic()
        server.process.terminate()
        for _ in range(60):
            if server.process.poll() is not None:
                break
            await asyncio.sleep(0.1)
        assert server.process.poll() is not None  # stopped (uvicorn re-raises the SIGTERM it handled)
        assert time.monotonic() - started < 4
