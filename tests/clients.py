"""An in-process HTTP client that runs the app's lifespan on the test's own event loop.

Litestar's ``AsyncTestClient`` runs the app on a separate thread and loop; a test that then reads the store from its
own loop would share connections across loops (asyncpg and redis-py refuse that). Here app, store and test share one
loop. The lifespan runs in a task of its own because it holds a cancel scope, which must be left by the task that
entered it, and pytest-asyncio may set a fixture up and tear it down in different tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from litestar import Litestar

BASE_URL = "http://testserver.local"


@asynccontextmanager
async def serve(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """Start ``app`` (its lifespan: store, sweeper), yield a client for it, and shut it down afterwards."""
    started, stopping = asyncio.Event(), asyncio.Event()

    async def run() -> None:
        async with app.lifespan():
            started.set()
            await stopping.wait()

    lifespan = asyncio.create_task(run())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({lifespan, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if not started.is_set():
        waiter.cancel()
        await lifespan  # startup failed: raise its error here
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
            yield client
    finally:
        stopping.set()
        await lifespan
