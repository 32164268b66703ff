"""Apps with the registry mounted, served by a real uvicorn on 127.0.0.1 in the test's own event loop.

A stream needs a real server: httpx's ASGI transport hands a response over only once it is complete, and an event
stream never is. In the test's loop, the test reads the store and the hub directly, as the app does.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from litestar import Litestar

from litestar_registry import ManualClock, RegistryConfig, RegistryPlugin
from litestar_registry.core.feed import FeedHub
from tests.api.conftest import ADMIN, KEY_A, KEY_ADMIN, KEY_B, A, registration
from tests.backends import backend_url, open_store

STREAM = "/api/v1/registry/stream"
SERVICES = "/api/v1/registry/services"
REGISTER = "/api/v1/registry/register"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Event:
    """One server-sent event as a client parses it (comments kept apart)."""

    id: str | None = None
    event: str | None = None
    data: str | None = None
    comments: list[str] = field(default_factory=list)


class EventReader:
    """Reads one event stream line by line, as an EventSource would."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self, within: float = 5.0) -> Event:
        """The next event or comment block (a block of comments only comes back with ``event`` None)."""
        found = Event()
        async with asyncio.timeout(within):
            async for line in self._lines:
                if not line:
                    if found != Event():
                        return found
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if not name:
                    found.comments.append(value)
                elif name == "data":
                    found.data = value if found.data is None else f"{found.data}\n{value}"
                elif name in ("id", "event"):
                    setattr(found, name, value)
        raise EOFError("the stream ended")

    async def event(self, within: float = 5.0) -> Event:
        """The next event, skipping comments."""
        async with asyncio.timeout(within):
            while True:
                found = await self.next(within)
                if found.event is not None:
                    return found

    async def opened(self) -> int:
        """Read the stream's first block (``: live after N``); return N."""
        first = await self.next()
        assert first.comments, first
        assert first.comments[0].startswith("live after "), first
        return int(first.comments[0].removeprefix("live after "))


@dataclass
class Live:
    """A running app: its base URL, plugin, clock, and an HTTP client for it."""

    base_url: str
    plugin: RegistryPlugin
    clock: ManualClock
    client: httpx.AsyncClient

    @property
    def hub(self) -> FeedHub:
        return self.plugin.feed

    async def register(self, slug: str, headers: dict[str, str] = A, **fields: Any) -> None:
        response = await self.client.post(REGISTER, json=registration(slug, **fields), headers=headers)
        assert response.status_code == 201, response.text

    @contextlib.asynccontextmanager
    async def stream(self, headers: dict[str, str] = A, **params: Any) -> AsyncIterator[EventReader]:
        async with self.client.stream("GET", STREAM, headers=headers, params=params) as response:
            assert response.status_code == 200, (await response.aread()).decode()
            assert response.headers["content-type"].startswith("text/event-stream")
            yield EventReader(response)


@contextlib.asynccontextmanager
async def live_app(plugin: RegistryPlugin) -> AsyncIterator[str]:
    """Serve a Litestar app with ``plugin`` on 127.0.0.1 under uvicorn, in this loop; yield its base URL."""
    port = _free_port()
    app = Litestar(plugins=[plugin])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    await task  # startup failed: raise its error
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def settled(condition: Callable[[], bool], within: float = 3.0) -> None:
    """Wait until ``condition()`` holds (checked every 20 ms), failing after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if condition():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.02)


MakeLive = Callable[..., Any]
FEED_BACKENDS = ["memory", "sqlite", "postgres", "redis"]


@pytest.fixture(params=FEED_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_live(backend: str, tmp_path: Path) -> AsyncIterator[MakeLive]:
    """Start apps on the test's backend (several share its store); all are stopped at the end of the test."""
    stack = AsyncExitStack()
    url = backend_url(backend, tmp_path)
    # The server backends are shared between tests: empty the store (and its log) before any app reads it.
    async with open_store(backend, tmp_path):
        pass

    async def make(**settings: Any) -> Live:
        clock = settings.pop("clock", None) or ManualClock()
        config = RegistryConfig(
            **{
                "store_url": url,
                "clock": clock,
                "service_keys": {"team-a": KEY_A, "team-b": KEY_B},
                "admin_keys": {"ops": KEY_ADMIN},
                "auto_approve_accounts": frozenset({"team-a"}),
                "sweeper_enabled": False,
                "ttl_path": "",
                "feed_ping_interval_seconds": 5.0,
                **settings,
            }
        )
        plugin = RegistryPlugin(config)
        base_url = await stack.enter_async_context(live_app(plugin))
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=10))
        return Live(base_url=base_url, plugin=plugin, clock=clock, client=client)

    try:
        yield make
    finally:
        await stack.aclose()


__all__ = ("ADMIN", "REGISTER", "SERVICES", "STREAM", "EventReader", "Live", "MakeLive", "live_app", "settled")
