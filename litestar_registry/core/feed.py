"""The change feed's hub: one per process, it knows the log's last id and wakes whoever waits for it to move.

The change log (:class:`~litestar_registry.core.events.EventLog`) is the source of truth. The hub only keeps the
highest id it has seen and wakes its watchers (SSE streams, long polls) when that id moves; a watcher then reads the
log after its own cursor. Three things make the hub look at the log again:

- a write of this process (:meth:`FeedHub.notify`, wired to ``Registry.on_events``);
- a wake-up from another app instance (a :class:`Wakeup`, Litestar's channels in the plugin);
- a periodic poll while anyone watches, the safety net for a wake-up that never came.

Watchers share the hub: no client has a task, a subscription or a poll loop of its own. Framework-free like the rest
of the core: the HTTP layer turns :meth:`FeedHub.follow` into server-sent events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Collection
from typing import Protocol, TypeAlias

import msgspec

from litestar_registry.core.events import ChangeEvent, EventLog, Topic

__all__ = ("FeedGap", "FeedHub", "FeedItem", "Opened", "Ping", "Wakeup", "raise_if_cancelled")

logger = logging.getLogger("litestar_registry")


class Wakeup(Protocol):
    """Wake-ups between app instances that share a store: a signal that the log moved, never the events themselves.

    One subscription per process: the hub is its only listener and fans the signal out to its watchers itself.
    """

    url: str
    """Where the wake-ups travel (for the logs, which mask its password)."""

    @property
    def subscriptions(self) -> int:
        """How many subscriptions this process holds right now (1 while listening, 0 otherwise)."""
        ...

    async def open(self) -> None:
        """Connect and subscribe; a failure is logged and retried by :meth:`signals`, never raised."""
        ...

    async def close(self) -> None:
        """Unsubscribe and disconnect; :meth:`signals` ends."""
        ...

    async def publish(self) -> None:
        """Tell every other instance that the log moved."""
        ...

    def signals(self) -> AsyncIterator[None]:
        """Yield once per wake-up from another instance (its own are skipped); reconnect after a failure."""
        ...


class FeedGap(msgspec.Struct, kw_only=True, frozen=True):
    """A cursor the log cannot continue from: the events after ``after`` up to ``resume_after`` are not there.

    ``reason`` is ``retention`` (they were dropped by retention) or ``unknown`` (``after`` is beyond the log's last
    id: a cursor of another log, or of a store that was emptied). The feed goes on after ``resume_after``.
    """

    after: int
    resume_after: int
    reason: str


class Opened(msgspec.Struct, kw_only=True, frozen=True):
    """The first item: the feed follows the log, and every event after ``after`` comes next (replayed, then live)."""

    after: int


class Ping(msgspec.Struct, frozen=True):
    """Nothing happened for a while: the stream says so, to keep proxies from closing it."""


FeedItem: TypeAlias = ChangeEvent | FeedGap | Opened | Ping
"""What :meth:`FeedHub.follow` yields."""

_PING = Ping()
_STOP_SECONDS = 5.0


def raise_if_cancelled() -> None:
    """Raise ``CancelledError`` if the running task is being cancelled.

    A client library that catches the cancellation of an await and goes on leaves the task running with its
    cancellation pending: redis-py 8.1 does so for a command in flight (it returns normally). A loop checks this
    before it waits again, or it would wait forever for a cancellation that already came.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class FeedHub:
    """Keeps the log's last id and wakes watchers when it moves: one per process, shared by every watcher.

    Args:
        log: The change log (the store).
        poll_interval: Seconds between two reads of the log while anyone watches, whatever the wake-ups say.
        wakeup: Cross-instance wake-ups; ``None`` relies on this process's writes and the poll only.
        batch_size: Most events :meth:`follow` reads from the log at once.
    """

    def __init__(
        self, log: EventLog, *, poll_interval: float = 1.0, wakeup: Wakeup | None = None, batch_size: int = 100
    ) -> None:
        self.log = log
        self.poll_interval = poll_interval
        self.wakeup = wakeup
        self.batch_size = batch_size
        self.last_id = 0
        """The highest id the hub has seen in the log (it may lag the log by one wake-up, never lead it)."""
        self._moved = asyncio.Event()
        """Set, and replaced, whenever ``last_id`` moves: every waiter of that moment wakes at once."""
        self._kick = asyncio.Event()
        self._local = False
        self._watchers = 0
        self._waiting = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._failing: set[str] = set()
        """What keeps failing (``read``, ``publish``): logged once when it starts, and once when it works again."""

    # --- lifecycle ----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the log's last id, subscribe to wake-ups, and start the hub's two tasks (the only ones it has)."""
        self._closed = False
        self._moved, self._kick = asyncio.Event(), asyncio.Event()
        if self._local:  # writes made before the start (provisioning's, at startup) are announced at once
            self._kick.set()
        await self._refresh()
        self._tasks = [asyncio.create_task(self._pump(), name="registry-feed-pump")]
        if self.wakeup is not None:
            await self.wakeup.open()
            self._tasks.append(asyncio.create_task(self._listen(self.wakeup), name="registry-feed-wakeups"))

    async def stop(self) -> None:
        """End every watcher's wait (streams end), stop the tasks and unsubscribe."""
        self._closed = True
        self._wake()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=_STOP_SECONDS)
            if stuck:  # never hold the app's shutdown: say so instead
                logger.warning("litestar-registry: the change feed's tasks did not stop within %g s", _STOP_SECONDS)
        if self.wakeup is not None:
            await self.wakeup.close()

    @property
    def closed(self) -> bool:
        """Whether the hub stopped: streams end."""
        return self._closed

    @property
    def watchers(self) -> int:
        """Streams and long polls following the log right now."""
        return self._watchers

    @property
    def waiting(self) -> int:
        """Watchers blocked in :meth:`wait` right now."""
        return self._waiting

    @property
    def tasks(self) -> int:
        """Tasks the hub runs (1, or 2 with wake-ups): the same however many watchers there are."""
        return sum(not task.done() for task in self._tasks)

    # --- wake-ups -----------------------------------------------------------------------------------------------

    async def notify(self) -> None:
        """This process appended events (``Registry.on_events``): wake local watchers, tell the other instances.

        Returns at once: the hub's own task reads the log and publishes, once for a burst of writes.
        """
        self._local = True
        self._kick.set()

    async def current(self) -> int:
        """The log's last id, read now (one cheap read); watchers wake if it moved."""
        await self._refresh()
        return self.last_id

    async def wait(self, after: int, seconds: float) -> bool:
        """Wait until the log's last id is beyond ``after``, at most ``seconds``; return whether it is.

        Call it as a watcher (inside :meth:`watching`), so that the hub polls the log while it waits.
        """
        if self.last_id > after or self._closed:
            return self.last_id > after
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        self._waiting += 1
        try:
            while self.last_id <= after and not self._closed:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                moved = self._moved
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await moved.wait()
        finally:
            self._waiting -= 1
        return self.last_id > after

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """Count the caller as a watcher while inside: the hub reads the log on wake-ups and polls only then."""
        self._watchers += 1
        try:
            yield
        finally:
            self._watchers -= 1

    # --- following ----------------------------------------------------------------------------------------------

    async def follow(
        self,
        after: int | None,
        *,
        topics: Collection[Topic] | None = None,
        subject: str | None = None,
        accept: Callable[[ChangeEvent], bool] | None = None,
        ping_interval: float = 15.0,
        lifetime: float | None = None,
    ) -> AsyncGenerator[FeedItem, None]:
        """Every event after ``after`` (``None``: from now on), then each new one as it is appended, until stopped.

        The first item is :class:`Opened`, once the cursor is fixed: no change made after it is missed. ``topics`` and
        ``subject`` filter in the store; ``accept`` filters what the caller may see. A cursor that retention overtook,
        or one beyond the log, yields a :class:`FeedGap` right after; so does, without ``topics`` and ``subject``, a
        follower that lags so far behind that retention overtakes it while it follows. A :class:`Ping` comes after
        ``ping_interval`` seconds without anything to yield. With ``lifetime``, it ends after that many seconds.
        The generator holds no task: close it (or cancel the task iterating it) and nothing of it is left.
        """
        loop = asyncio.get_running_loop()
        end = math.inf if lifetime is None else loop.time() + lifetime
        async with self.watching():
            last = await self.current()
            cursor = last if after is None else after
            gap = await self._gap(after, last) if after is not None else None
            yield Opened(after=cursor if gap is None else gap.resume_after)
            if gap is not None:
                yield gap
                cursor = gap.resume_after
            quiet_since = loop.time()
            while not self._closed and loop.time() < end:
                raise_if_cancelled()
                known = self.last_id  # every id up to it is committed: a read after it sees them all
                page = await self.log.read_events(cursor, limit=self.batch_size, topics=topics, subject=subject)
                if page.last_id < cursor:  # the log went back (an emptied store): go on from its end, and say so
                    yield FeedGap(after=cursor, resume_after=page.last_id, reason="unknown")
                    cursor = page.last_id
                    await self._refresh()  # the hub learns it too, or its last id would take the cursor back up
                    continue
                if topics is None and subject is None and page.items and page.items[0].id > cursor + 1:
                    # Ids have no holes: retention overtook a reader that lagged behind it while following.
                    yield FeedGap(after=cursor, resume_after=page.items[0].id - 1, reason="retention")
                for event in page.items:
                    cursor = event.id
                    if accept is None or accept(event):
                        yield event
                        quiet_since = loop.time()
                if len(page.items) >= self.batch_size:
                    continue
                # Nothing more matches up to ``known``: skip what the filters left out, or the wait returns at once.
                cursor = max(cursor, known)
                remaining = min(quiet_since + ping_interval, end) - loop.time()
                if remaining <= 0 or not await self.wait(cursor, remaining):
                    if self._closed or loop.time() >= end:
                        return
                    if loop.time() - quiet_since >= ping_interval:
                        yield _PING
                        quiet_since = loop.time()

    async def _gap(self, after: int, last: int) -> FeedGap | None:
        """The gap between ``after`` and the oldest event kept, if retention made one (ids are consecutive)."""
        if after > last:
            return FeedGap(after=after, resume_after=last, reason="unknown")
        if after == last:
            return None
        page = await self.log.read_events(after, limit=1)
        first = page.items[0].id if page.items else page.last_id + 1
        if first > after + 1:
            return FeedGap(after=after, resume_after=first - 1, reason="retention")
        return None

    # --- internals ----------------------------------------------------------------------------------------------

    def _advance(self, last_id: int) -> None:
        if last_id > self.last_id:
            self.last_id = last_id
            self._wake()

    def _wake(self) -> None:
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def _refresh(self) -> None:
        page = await self.log.read_events(self.last_id, limit=0)
        if page.last_id < self.last_id:  # ids are never reused: only an emptied store goes back
            logger.warning(
                "litestar-registry: the change log went back from id %d to %d (was the store emptied?)",
                self.last_id,
                page.last_id,
            )
            self.last_id = page.last_id
            self._wake()
        self._advance(page.last_id)

    async def _pump(self) -> None:
        """The hub's one loop: read the log when told to or when the poll is due, and publish this process's writes.

        Without watchers it reads nothing (streams and long polls read the log's last id when they start).
        """
        while True:
            raise_if_cancelled()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._kick.wait()
            self._kick.clear()
            local, self._local = self._local, False
            if self._watchers:
                await self._attempt("read", self._refresh)
            if local and self.wakeup is not None:
                await self._attempt("publish", self.wakeup.publish)

    async def _attempt(self, what: str, action: Callable[[], Awaitable[None]]) -> None:
        """Run ``action``; a failure is logged when it starts failing (not at every poll), and when it recovers."""
        try:
            await action()
        except Exception:
            if what not in self._failing:
                self._failing.add(what)
                logger.warning("litestar-registry: the change feed could not %s (it keeps trying)", what, exc_info=True)
            return
        if what in self._failing:
            self._failing.discard(what)
            logger.info("litestar-registry: the change feed can %s again", what)

    async def _listen(self, wakeup: Wakeup) -> None:
        async for _ in wakeup.signals():
            self._kick.set()
