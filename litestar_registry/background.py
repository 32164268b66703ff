"""The sweeper: persists degradations and expiries in the background of the host app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from litestar_registry.core.feed import raise_if_cancelled
from litestar_registry.core.models import ServiceRecord
from litestar_registry.core.registry import Registry

__all__ = ("SweepListener", "Sweeper")

SweepListener = Callable[[Sequence[tuple[ServiceRecord, ServiceRecord]]], Awaitable[None]]
"""Told the ``(before, after)`` pairs of every sweep that changed something (provisioning recovers dead instances)."""

logger = logging.getLogger("litestar_registry.sweeper")


class Sweeper:
    """Calls :meth:`Registry.sweep` (then :meth:`Registry.trim_events`) every ``interval`` seconds until stopped.

    Reads already check deadlines, so the sweeper only makes what time did durable (and, later, announces it). A
    failing sweep is logged and retried at the next tick: a database blip must not stop expiry for good.
    """

    def __init__(self, registry: Registry, interval: float, listeners: Sequence[SweepListener] = ()) -> None:
        self.registry = registry
        self.interval = interval
        self.listeners = list(listeners)
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """Sweep now, tell the listeners what changed, apply the change log's retention; return how many changed.

        A failing listener is logged and does not keep the others from hearing of the sweep.
        """
        changes = await self.registry.sweep()
        for before, after in changes:
            level = logging.INFO if before.status is not after.status else logging.DEBUG
            logger.log(
                level, "service %s: %s -> %s (%d missed)", after.slug, before.status, after.status, after.failure_count
            )
        if changes:
            for listener in self.listeners:
                try:
                    await listener(changes)
                except Exception:
                    logger.exception("a sweep listener failed")
        try:
            if dropped := await self.registry.trim_events():
                logger.debug("change log: %d event(s) past retention dropped", dropped)
        except Exception:
            logger.exception("trimming the change log failed; retrying at the next sweep")
        return len(changes)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                logger.exception("registry sweep failed; retrying in %.1fs", self.interval)
            raise_if_cancelled()  # a driver that swallowed the cancellation (redis-py 8.1 does) must not keep us alive
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        """Start sweeping in a background task."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="litestar-registry-sweeper")

    async def stop(self) -> None:
        """Stop the background task and wait for it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
