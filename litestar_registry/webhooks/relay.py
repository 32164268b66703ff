"""The relay: follows the change log and starts a delivery for every event each enabled subscription wants.

One relay runs in every app instance (started in the plugin's lifespan). Each round reads the log after the relay's
durable cursor (kept in the webhook store), then the enabled subscriptions (in that order: a subscription created
after the read starts after the events read, so none is missed or sent to it twice), starts the deliveries of the
matching ones, and only then moves the cursor. A crash between two of these steps repeats the round, and several
relays may run the same round: both are harmless, because a delivery's id and its workflow's id are derived from
the event and the subscription (:meth:`WebhookEngine.enqueue`). The relay polls every ``interval_seconds``, and
:meth:`Relay.wake` makes it look at once (the change feed calls it when the log grows).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from litestar_registry.core.events import ChangeEvent, EventLog, Topic
from litestar_registry.core.feed import raise_if_cancelled
from litestar_registry.webhooks.engine import WebhookEngine
from litestar_registry.webhooks.models import SubscriptionRecord

__all__ = ("Relay",)

logger = logging.getLogger("litestar_registry.webhooks")


class Relay:
    """Relays the change log to the webhook subscriptions (see the module docstring)."""

    def __init__(
        self,
        engine: WebhookEngine,
        log: EventLog,
        *,
        interval_seconds: float = 1.0,
        batch: int = 200,
        concurrency: int = 16,
    ) -> None:
        self.engine = engine
        self.log = log
        self.interval_seconds = interval_seconds
        self.batch = batch
        self.concurrency = concurrency
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._warned = False

    def start(self) -> None:
        """Run the relay in the background until :meth:`stop`."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="litestar-registry-webhook-relay")

    async def stop(self) -> None:
        """Stop the background relay (what it started keeps running in DBOS)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        """Look at the log now rather than at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        """One round: start the deliveries of the events after the cursor (one batch), then move it; the events read."""
        store = self.engine.store
        cursor = await store.get_cursor()
        page = await self.log.read_events(cursor, limit=self.batch)
        if not page.items:
            if page.last_id < cursor and not self._warned:
                self._warned = True
                logger.error(
                    "litestar-registry: the change log ends at id %d, before the webhook relay's cursor (%d): the "
                    "registry store was emptied or restored from an older copy. Events up to id %d are not delivered",
                    page.last_id,
                    cursor,
                    cursor,
                )
            return 0
        subscriptions = await store.enabled_subscriptions()
        due = [
            (subscription, event)
            for event in page.items
            for subscription in subscriptions
            if event.id > subscription.start_after and Topic(event.topic) in subscription.topics
        ]
        # Several at once: each waits on the store and on DBOS, and the order deliveries start in promises nothing.
        limit = asyncio.Semaphore(self.concurrency)

        async def enqueue(subscription: SubscriptionRecord, event: ChangeEvent) -> None:
            async with limit:
                await self.engine.enqueue(subscription, event)

        async with asyncio.TaskGroup() as group:
            for subscription, event in due:
                group.create_task(enqueue(subscription, event))
        await store.advance_cursor(page.items[-1].id)
        return len(page.items)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                read = await self.run_once()
            except Exception:
                logger.exception("litestar-registry: the webhook relay failed; it tries again at its next round")
                read = 0
            raise_if_cancelled()  # a driver that swallowed the cancellation (redis-py 8.1 does) must not keep us alive
            if read >= self.batch:
                continue  # more is waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_seconds)
