"""The live change feed over HTTP: ``GET {path}/registry/stream`` (server-sent events) and the lists' long poll.

Both read the change log through the process's one :class:`~litestar_registry.core.feed.FeedHub`: a stream or a
blocked list holds no task and no subscription of its own, and nothing of it is left once its client is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency, Provide
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from litestar_registry.api.openapi import ANY_KEY, READ
from litestar_registry.api.problems import problems
from litestar_registry.core.auth import Principal
from litestar_registry.core.events import ChangeEvent, Topic
from litestar_registry.core.feed import FeedGap, FeedHub, FeedItem, Opened, Ping
from litestar_registry.core.models import ServiceStatus
from litestar_registry.core.validation import SLUG_MAX_LENGTH, SLUG_PATTERN

__all__ = (
    "INDEX_HEADER",
    "FeedController",
    "FeedSettings",
    "IndexQuery",
    "WaitQuery",
    "feed_dependencies",
    "index_header",
    "long_poll",
    "parse_wait",
    "visible_to",
)

logger = logging.getLogger("litestar_registry")

INDEX_HEADER = "X-Registry-Index"
MAX_ID = 2**63 - 1
WAIT_PATTERN = r"^[0-9]{1,9}(\.[0-9]{1,3})?(ms|s|m)?$"
_WAIT = re.compile(WAIT_PATTERN)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "": 1.0}
_HIDDEN = frozenset({ServiceStatus.PENDING.value, ServiceStatus.REJECTED.value})

IndexQuery = Annotated[
    int | None,
    QueryParameter(
        gt=-1,  # ge=0, said so that the document shows it: Litestar leaves a bound of 0 out
        le=MAX_ID,
        description=f"Long poll: the `{INDEX_HEADER}` of an earlier answer. Answers at once if the registry changed "
        "since (or if the index is ahead of it); otherwise waits for a change, or for `wait`.",
    ),
]
WaitQuery = Annotated[
    str | None,
    QueryParameter(
        pattern=WAIT_PATTERN,
        max_length=16,
        description="Long poll: how long to wait for a change, with `index`: `30s`, `5m`, `500ms` or seconds "
        "(`30`). Longer waits are cut to the registry's maximum, which is also the default; ignored without `index`.",
    ),
]


class FeedSettings(msgspec.Struct, kw_only=True, frozen=True):
    """What the feed's routes need from the config."""

    ping_interval: float
    max_wait: float
    stream_lifetime: float | None = None


def feed_dependencies(hub: FeedHub, settings: FeedSettings) -> dict[str, Provide]:
    """``registry_feed`` and ``registry_feed_settings``, for the Routers whose routes stream or long-poll."""

    def provide_feed() -> FeedHub:
        return hub

    def provide_settings() -> FeedSettings:
        return settings

    return {
        "registry_feed": Provide(provide_feed, sync_to_thread=False),
        "registry_feed_settings": Provide(provide_settings, sync_to_thread=False),
    }


def index_header(description: str = "") -> ResponseHeader:
    """The OpenAPI entry of the index header that every list answer carries."""
    return ResponseHeader(
        name=INDEX_HEADER,
        description=description
        or "The change log's last id when the list was read: pass it as `index` to wait for the next change.",
        documentation_only=True,
    )


def parse_wait(text: str) -> float:
    """Seconds in a ``wait`` (``30s``, ``5m``, ``500ms``, ``30``); :data:`WAIT_PATTERN` already holds."""
    match = _WAIT.match(text)
    if match is None:  # pragma: no cover - the query parameter's pattern refuses it first
        raise ValueError(f"not a duration: {text!r}")
    number = text[: len(text) - len(match.group(2) or "")]
    return float(number) * _UNITS[match.group(2) or ""]


async def long_poll(
    request: Request[Any, Any, Any],
    hub: FeedHub,
    settings: FeedSettings,
    index: int | None,
    wait: str | None,
) -> int:
    """Consul's blocking query: with ``index``, wait until the log moves beyond it (at most ``wait``); return the index.

    The index is read before the caller reads its list, so that the list reflects at least every change up to it.
    Without ``index`` it answers at once, ``wait`` or not (as Consul ignores ``wait`` without ``index``). A client that
    hangs up ends the wait.
    """
    if index is None:
        return await hub.current()
    seconds = min(parse_wait(wait), settings.max_wait) if wait is not None else settings.max_wait
    async with hub.watching():
        current = await hub.current()
        if current != index or seconds <= 0:
            return current
        # Up to 1/16 more, as Consul does, so that the clients of one change do not all come back at once.
        seconds += random.uniform(0, seconds / 16)
        await _until_change_or_hangup(request, hub.wait(index, seconds))
    return await hub.current()


async def _until_change_or_hangup(request: Request[Any, Any, Any], waiting: Any) -> None:
    wait = asyncio.ensure_future(waiting)
    hangup = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({wait, hangup}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (wait, hangup):
            task.cancel()
        for task in (wait, hangup):
            with contextlib.suppress(BaseException):
                await task


async def _disconnected(request: Request[Any, Any, Any]) -> None:
    """Return when the client hangs up (a GET's body, if any, is read and dropped)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def visible_to(principal: Principal | None) -> Callable[[ChangeEvent], bool]:
    """Whether ``principal`` may see an event, by the rules of the reads.

    Services are shown as the lists show them: pending and rejected ones (an event whose status or previous status is
    one of these) only to admins and to their own account. Workflow events only to admins and to their own tenant,
    as the provisioning routes show workflows.
    """

    def accept(event: ChangeEvent) -> bool:
        if principal is not None and principal.is_admin:
            return True
        if str(event.topic).startswith("workflow."):
            return principal is not None and principal.tenant is not None and principal.tenant == event.tenant
        data = event.data
        if data.get("status") in _HIDDEN or data.get("previous_status") in _HIDDEN:
            return principal is not None and principal.account == data.get("account")
        return True

    return accept


def _message(item: FeedItem) -> ServerSentEventMessage:
    if isinstance(item, Ping):
        return ServerSentEventMessage(comment="ping", data=None)
    if isinstance(item, Opened):
        return ServerSentEventMessage(comment=f"live after {item.after}", data=None)
    if isinstance(item, FeedGap):
        return ServerSentEventMessage(id=item.resume_after, event="gap", data=msgspec.json.encode(item).decode())
    return ServerSentEventMessage(id=item.id, event=str(item.topic), data=msgspec.json.encode(item).decode())


async def _stream(items: AsyncGenerator[FeedItem, None]) -> AsyncIterator[ServerSentEventMessage]:
    try:
        async for item in items:
            yield _message(item)
    except Exception:
        logger.warning("litestar-registry: an event stream ended on an error", exc_info=True)
    finally:
        await items.aclose()


TopicQuery = Annotated[
    list[Topic] | None,
    QueryParameter(max_items=len(Topic), description="Only these topics (repeat the parameter for several)."),
]
ServiceQuery = Annotated[
    str | None,
    QueryParameter(
        pattern=SLUG_PATTERN,
        min_length=1,
        max_length=SLUG_MAX_LENGTH,
        description="Only the events of this service (its slug).",
    ),
]
AfterQuery = Annotated[
    int | None,
    QueryParameter(gt=-1, le=MAX_ID, description="Replay the events after this id first (`Last-Event-ID` wins)."),
]
LastEventId = Annotated[
    int | None,
    HeaderParameter(
        name="Last-Event-ID",
        gt=-1,
        le=MAX_ID,
        description="Sent by an EventSource that reconnects: the stream replays every event after it.",
    ),
]


class FeedController(Controller):
    """The change log as a live stream of server-sent events."""

    path = "/registry"

    @get(
        "/stream",
        media_type="text/event-stream",
        responses=problems(401, 422),
        opt=READ,
        security=ANY_KEY,
        summary="Stream changes",
        response_description="Server-sent events: `id: <event id>`, `event: <topic>`, `data: <JSON envelope>`; "
        "`event: gap` when events asked for are gone; comments (`: ping`) while nothing happens.",
    )
    async def stream(
        self,
        registry_feed: NamedDependency[FeedHub],
        registry_feed_settings: NamedDependency[FeedSettings],
        registry_reader: NamedDependency[Principal | None],
        topic: TopicQuery = None,
        service: ServiceQuery = None,
        after: AfterQuery = None,
        last_event_id: LastEventId = None,
    ) -> ServerSentEvent:
        """Every change from now on, as it is made, through any app instance sharing the store.

        Each event is `id: <id>`, `event: <topic>` and `data:` the JSON envelope `{id, topic, occurred_at, subject,
        tenant, data}`, where `data` is the topic's payload. A client that reconnects with `Last-Event-ID` (or opens
        with `?after=`) gets every event after that id first, from the change log, then the live ones. Events older
        than the log's retention are gone: an `event: gap` says which. Filtered by `topic` and `service`, and by what
        the caller may read (pending and rejected services only for their account and admins).
        """
        items = registry_feed.follow(
            last_event_id if last_event_id is not None else after,
            topics=frozenset(topic) if topic else None,
            subject=service,
            accept=visible_to(registry_reader),
            ping_interval=registry_feed_settings.ping_interval,
            lifetime=registry_feed_settings.stream_lifetime,
        )
        return ServerSentEvent(_stream(items))
