"""Wake-ups between app instances through Litestar's channels backends: Redis pub/sub or PostgreSQL LISTEN/NOTIFY.

A wake-up says only "the log moved": watchers then read the change log, which is the source of truth, so a lost or
duplicated wake-up delays nobody for longer than the feed's poll interval and never loses an event.

The backend is used without ``ChannelsPlugin`` (the host may have its own) and with exactly one subscription per
process: the feed's hub listens, and fans the signal out to its watchers itself. Litestar's channels otherwise hold a
subscriber per client, and leak them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from litestar_registry.core.feed import raise_if_cancelled
from litestar_registry.store import mask_url

if TYPE_CHECKING:
    from litestar.channels import ChannelsBackend

    from litestar_registry.config import RegistryConfig
    from litestar_registry.core.ports import ServiceStore

__all__ = ("CHANNEL", "ChannelsWakeup", "wakeup_url", "wakeup_url_problem")

logger = logging.getLogger("litestar_registry")

CHANNEL = "litestar_registry_feed"
"""The channel every instance of one registry publishes to and listens on (PostgreSQL: per database; Redis: the
database number is appended, as pub/sub channels span a server's databases)."""
_REDIS_SCHEMES = {"redis": "redis", "rediss": "rediss", "valkey": "redis", "valkeys": "rediss", "unix": "unix"}
_POSTGRES_SCHEMES = ("postgresql", "postgres")
_OUR_QUERY = {"cluster", "pool_size", "max_overflow", "max_connections"}
"""Query parameters of a store URL that are ours or SQLAlchemy's, not the channel driver's."""
_RETRY_FIRST_SECONDS = 0.5
_RETRY_MAX_SECONDS = 30.0


def wakeup_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a channels URL (Redis/Valkey or PostgreSQL), or ``None``."""
    scheme = url.partition("://")[0].lower()
    if "://" not in url or (scheme not in _REDIS_SCHEMES and scheme.partition("+")[0] not in _POSTGRES_SCHEMES):
        return "expected a redis://, rediss://, valkey:// or postgresql:// URL"
    return None


def wakeup_url(config: RegistryConfig, store: ServiceStore) -> str | None:
    """The channels URL the feed's wake-ups use with ``config``: ``feed_channels_url``, else the store's own server.

    ``None`` (polling only) when ``feed_channels`` is off, or when the store is SQLite or memory, or a store instance
    whose server cannot be told (a Redis client passed in without a URL, say).
    """
    if not config.feed_channels:
        return None
    if config.feed_channels_url:
        return config.feed_channels_url
    if config.store is not None:
        url = getattr(store, "url", None)
    elif config.sqlalchemy_config is not None:
        url = getattr(config.sqlalchemy_config, "connection_string", None)
    else:
        url = config.store_url
    if isinstance(url, str) and wakeup_url_problem(url) is None:
        return url
    return None


def _kind(url: str) -> str:
    return "redis" if url.partition("://")[0].lower() in _REDIS_SCHEMES else "postgres"


def _without_ours(url: str) -> str:
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key not in _OUR_QUERY]
    return urlunsplit(parts._replace(query=urlencode(query)))


class _Message(msgspec.Struct, kw_only=True, frozen=True):
    origin: str
    """The publishing process: its own wake-ups come back to it, and are skipped."""


class ChannelsWakeup:
    """Cross-instance wake-ups for :class:`~litestar_registry.core.feed.FeedHub`, over one channels backend.

    Args:
        url: ``redis://``, ``rediss://``, ``valkey://``, ``valkeys://`` or ``unix://`` (Redis pub/sub; with
            ``?cluster=true`` the node named, where Redis Cluster's publications from any node arrive: not tested on a
            cluster), or ``postgresql://`` with any driver suffix (``LISTEN``/``NOTIFY`` through asyncpg, or
            psycopg's backend when asyncpg is not installed).
    """

    def __init__(self, url: str) -> None:
        if (problem := wakeup_url_problem(url)) is not None:
            raise ValueError(f"channels URL {mask_url(url)!r}: {problem}")
        self.url = url
        self.kind = _kind(url)
        self.origin = uuid.uuid4().hex
        self.channel = CHANNEL
        self._backend: ChannelsBackend | None = None
        self._lost = asyncio.Event()
        """Set when the listening connection is gone and the backend would not say so (asyncpg's just goes quiet)."""
        self._close_client: Callable[[], Awaitable[None]] | None = None
        self._subscribed = False
        self._closed = False
        self._failures = 0

    @property
    def subscriptions(self) -> int:
        """1 while this process listens on the channel, else 0: never one per client."""
        return int(self._subscribed)

    async def open(self) -> None:
        """Subscribe; a server that does not answer is logged and tried again by :meth:`signals`."""
        self._closed = False
        try:
            await self._connect()
        except Exception as exc:
            await self._disconnect()
            logger.warning(
                "litestar-registry: feed wake-ups through %s not available yet (%s); polling until they are",
                mask_url(self.url),
                f"{type(exc).__name__}: {exc}",
            )

    async def close(self) -> None:
        """Unsubscribe and disconnect."""
        self._closed = True
        await self._disconnect()

    async def publish(self) -> None:
        """Tell the other instances that the log moved (skipped while reconnecting: that loss was logged, they poll)."""
        if self._backend is None:
            return
        await self._backend.publish(msgspec.json.encode(_Message(origin=self.origin)), [self.channel])

    async def signals(self) -> AsyncIterator[None]:
        """Yield once per wake-up from another instance; reconnect (with backoff) when the subscription breaks."""
        while not self._closed:
            raise_if_cancelled()
            try:
                if self._backend is None:
                    await self._connect()
                    logger.info("litestar-registry: feed wake-ups through %s", mask_url(self.url))
                async for data in self._messages():
                    self._failures = 0
                    try:
                        message = msgspec.json.decode(data, type=_Message)
                    except msgspec.DecodeError:
                        message = None
                    if message is None or message.origin != self.origin:
                        yield None  # a stranger's message still only makes us read the log
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._disconnect()
                if self._closed:
                    return
                delay = min(_RETRY_MAX_SECONDS, _RETRY_FIRST_SECONDS * 2**self._failures)
                self._failures += 1
                logger.warning(
                    "litestar-registry: feed wake-ups through %s lost (%s); polling, reconnecting in %.1f s",
                    mask_url(self.url),
                    f"{type(exc).__name__}: {exc}",
                    delay,
                )
                await asyncio.sleep(delay)

    async def _messages(self) -> AsyncIterator[bytes]:
        """The backend's messages on our channel; raises when the listening connection is gone."""
        backend = self._backend
        if backend is None:
            raise ConnectionError("not connected to the channels server")
        stream = backend.stream_events()
        lost: asyncio.Future[Any] = asyncio.ensure_future(self._lost.wait())
        pending: asyncio.Future[Any] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(stream))
                await asyncio.wait({pending, lost}, return_when=asyncio.FIRST_COMPLETED)
                if not pending.done():
                    raise ConnectionError("the listening connection was closed")
                _, data = pending.result()
                pending = None
                yield data
        finally:
            for future in (pending, lost):
                if future is not None:
                    future.cancel()
                    with contextlib.suppress(BaseException):
                        await future
            with contextlib.suppress(BaseException):
                await stream.aclose()

    async def _connect(self) -> None:
        self._lost = asyncio.Event()
        backend = self._redis_backend() if self.kind == "redis" else self._postgres_backend()
        self._backend = backend
        await backend.on_startup()
        await backend.subscribe([self.channel])
        self._subscribed = True

    async def _disconnect(self) -> None:
        backend, self._backend, self._subscribed = self._backend, None, False
        close_client, self._close_client = self._close_client, None
        if backend is not None:
            with contextlib.suppress(Exception):
                await backend.on_shutdown()
        if close_client is not None:
            with contextlib.suppress(Exception):
                await close_client()

    def _redis_backend(self) -> ChannelsBackend:
        from litestar.channels.backends.redis import RedisChannelsPubSubBackend
        from redis.asyncio import Redis

        scheme, _, rest = self.url.partition("://")
        url = _without_ours(f"{_REDIS_SCHEMES[scheme.lower()]}://{rest}")
        client = Redis.from_url(url)
        self._close_client = client.aclose
        self.channel = f"{CHANNEL}:{client.connection_pool.connection_kwargs.get('db', 0)}"

        class PubSubBackend(RedisChannelsPubSubBackend):
            async def publish(self, data: bytes, channels: Any) -> None:
                # PUBLISH itself, not Litestar's script: a script's keys must live on the node it runs on, which a
                # channel name need not on Redis Cluster; one channel needs no script.
                for channel in channels:
                    await client.publish(channel, data)

        return PubSubBackend(redis=client, stream_sleep_no_subscriptions=1000)

    def _postgres_backend(self) -> ChannelsBackend:
        rest = self.url.partition("://")[2]
        dsn = _without_ours(f"postgresql://{rest}")
        try:
            import asyncpg
        except ImportError:  # psycopg comes with DBOS (the workflows extra)
            from litestar.channels.backends.psycopg import PsycoPgChannelsBackend

            return PsycoPgChannelsBackend(dsn)
        from litestar.channels.backends.asyncpg import AsyncPgChannelsBackend

        lost = self._lost

        async def listen() -> asyncpg.Connection:
            connection = await asyncpg.connect(dsn)
            connection.add_termination_listener(lambda _: lost.set())
            return connection

        class NotifyBackend(AsyncPgChannelsBackend):
            """Litestar's backend, publishing on one connection kept open: it opens a new one per publication."""

            publisher: asyncpg.Connection | None = None

            async def publish(self, data: bytes, channels: Any) -> None:
                if self.publisher is None or self.publisher.is_closed():
                    self.publisher = await asyncpg.connect(dsn)
                for channel in channels:
                    await self.publisher.execute("SELECT pg_notify($1, $2)", channel, data.decode())

            async def on_shutdown(self) -> None:
                publisher, self.publisher = self.publisher, None
                if publisher is not None:
                    with contextlib.suppress(Exception):
                        await publisher.close()
                await super().on_shutdown()

        return NotifyBackend(make_connection=listen)  # only the listening connection comes from it now
