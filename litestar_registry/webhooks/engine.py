"""The webhook engine: subscriptions, and one DBOS workflow per delivery that walks the retry schedule durably.

:class:`WebhookEngine` is what the admin routes and the relay call. Each run of a delivery is one DBOS workflow,
``litestar_registry.webhook_delivery``, whose id is derived from the delivery's ``webhook-id`` and the run
(:func:`~litestar_registry.webhooks.models.dbos_delivery_id`): starting it again, from this or another app instance,
finds the one that exists and runs nothing twice. Inside it:

* each attempt is one DBOS step (checkpointed when it returns, so a replay after a crash never sends it again; an
  attempt cut short by a crash is sent again, with the same ``webhook-id``, for the subscriber to drop);
* the step signs the body with the subscription's secrets (opened in memory only: they never reach DBOS's records),
  sends it through the outbound URL policy, records the attempt and moves the delivery in one write of the store,
  and decides the next delay (the schedule, its jitter, the subscriber's ``Retry-After``);
* between attempts the workflow sleeps durably (``DBOS.sleep_async``): a restart wakes it when it was due.

The sleep and the clock are injected, so tests walk the whole schedule at once and exactly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeAlias

import httpx
import msgspec
from dbos import DBOS, SetWorkflowID, StepOptions

from litestar_registry.core.clock import Clock, SystemClock
from litestar_registry.core.errors import IllegalTransition, InvalidInput, StaleWrite
from litestar_registry.core.events import ChangeEvent, EventLog, Topic
from litestar_registry.core.validation import check_storable
from litestar_registry.outbound.http import OutboundHTTP
from litestar_registry.outbound.policy import OutboundURLPolicy, OutboundURLRefused, Resolver
from litestar_registry.provisioning.crypto import CredentialCipher
from litestar_registry.provisioning.models import new_workflow_id
from litestar_registry.provisioning.runtime import DBOSRuntime
from litestar_registry.webhooks.errors import DeliveryNotFound, SubscriptionNotFound
from litestar_registry.webhooks.models import (
    AttemptRecord,
    DeliveryPage,
    DeliveryQuery,
    DeliveryRecord,
    PreviousSecret,
    SubscriptionPage,
    SubscriptionRecord,
    dbos_delivery_id,
    envelope,
    webhook_id,
)
from litestar_registry.webhooks.schedule import RetrySchedule, parse_retry_after
from litestar_registry.webhooks.signing import check_secret, new_secret, signature_headers
from litestar_registry.webhooks.states import FINISHED, DeliveryEvent, DeliveryState
from litestar_registry.webhooks.store.base import Outcome, WebhookStore

__all__ = ("WORKFLOW_NAME", "DeliverySettings", "Sleep", "WebhookEngine", "log_position")

logger = logging.getLogger("litestar_registry.webhooks")

WORKFLOW_NAME = "litestar_registry.webhook_delivery"
"""The one DBOS workflow that runs every delivery (prefixed: a host's own DBOS workflows keep their names)."""
Sleep: TypeAlias = Callable[[float], Awaitable[None]]
"""How the workflow waits between attempts: ``DBOS.sleep_async`` (durable), or a test's instant stand-in."""
_MAX_ERROR = 2000
_MAX_EXCERPT = 1000
_IN_FLIGHT = frozenset({DeliveryState.PENDING, DeliveryState.RETRYING})
_CAS_ROUNDS = 5
_RESOLVE_TIMEOUT = 5.0
"""Longest a subscription's URL may take to resolve when it is checked (creation, update)."""
_STEP_OPTIONS: StepOptions = {"retries_allowed": True, "max_attempts": 5, "interval_seconds": 1.0, "backoff_rate": 2.0}
"""An attempt step that raises (the store unreachable, say) runs again a few times before the workflow gives up."""

_active: WebhookEngine | None = None

try:
    _USER_AGENT = f"litestar-registry-webhooks/{version('litestar-registry')}"
except PackageNotFoundError:  # pragma: no cover - a checkout that was not installed
    _USER_AGENT = "litestar-registry-webhooks"

UNSET: Any = msgspec.UNSET


@dataclass(frozen=True, kw_only=True)
class DeliverySettings:
    """How deliveries are made (the ``webhooks_*`` settings of the registry's configuration)."""

    schedule: RetrySchedule = field(default_factory=RetrySchedule)
    timeout_seconds: float = 15.0
    """An attempt succeeds only with a 2xx answer within this time (connection and answer included)."""
    max_response_bytes: int = 65_536
    """Bytes of an answer's body read at most; the rest is never read."""
    rotation_grace_seconds: float = 86_400.0
    """How long a rotated secret keeps signing deliveries beside its successor."""


async def log_position(log: EventLog) -> int:
    """The change log's last id (0 for a log that never held an event)."""
    return (await log.read_events(2**62, limit=1)).last_id


def _engine() -> WebhookEngine:
    if _active is None:
        raise RuntimeError("no webhook engine is active in this process (WebhookEngine.activate was not called)")
    return _active


def _short(text: str, limit: int = _MAX_ERROR) -> str:
    text = text.replace("\x00", "\ufffd")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(exc: BaseException) -> str:
    message = str(exc)
    return _short(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


class WebhookEngine:
    """Manages subscriptions and starts, replays and reads deliveries.

    Args:
        store: The read model.
        log: The change log the subscriptions' start positions are read from (the registry store).
        cipher: Seals the subscriptions' secrets.
        url_policy: Where deliveries may be sent.
        settings: Timeout, schedule, response limit, rotation grace.
        clock: Time for records, signatures and the schedule.
        sleep: The wait between attempts; ``DBOS.sleep_async`` unless a test replaces it.
        transport: An httpx transport for outbound requests (tests); the network otherwise.
        resolver: Name resolution for the URL policy (tests); the system's otherwise.
    """

    def __init__(
        self,
        *,
        store: WebhookStore,
        log: EventLog,
        cipher: CredentialCipher,
        url_policy: OutboundURLPolicy | None = None,
        settings: DeliverySettings | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.store = store
        self.log = log
        self.cipher = cipher
        self.policy = url_policy or OutboundURLPolicy()
        self.settings = settings or DeliverySettings()
        self.clock: Clock = clock or SystemClock()
        self.sleep: Sleep = sleep or DBOS.sleep_async
        self.http = OutboundHTTP(self.policy, transport=transport, resolver=resolver)
        self._resolver = resolver
        self.runtime: DBOSRuntime | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # Lifecycle

    def activate(self) -> None:
        """Make this the process's engine, before DBOS launches: launching recovers pending deliveries at once."""
        global _active
        if _active is not None and _active is not self:
            raise RuntimeError("another webhook engine is active in this process (one DBOS per process)")
        _active = self

    async def open(self, runtime: DBOSRuntime) -> None:
        """Activate, start DBOS (or join the process's running instance), then start what a crash kept from starting."""
        self.activate()
        self.runtime = runtime
        try:
            await runtime.start()
            await self.resume()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop this process's deliveries and leave DBOS; no longer the process's engine.

        The deliveries' DBOS workflows stay pending: the next start (or a survivor) recovers them where they stopped.
        They are stopped first, since DBOS's own thread pool goes with the last user of the runtime.
        """
        global _active
        tasks = [task for task in self._tasks if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        runtime, self.runtime = self.runtime, None
        try:
            if runtime is not None:
                await runtime.stop()
        finally:
            if _active is self:
                _active = None

    async def resume(self) -> int:
        """Start the workflow of every delivery in flight whose workflow was never started (a crash in between)."""
        started = 0
        for delivery in await self.store.in_flight_deliveries():
            workflow_id = dbos_delivery_id(delivery.webhook_id, delivery.run)
            if await DBOS.get_workflow_status_async(workflow_id) is None:
                await self._start(delivery.webhook_id, delivery.run)
                started += 1
        return started

    @property
    def executor_id(self) -> str:
        """The DBOS executor this process runs deliveries under."""
        return str(DBOS.executor_id)

    # Subscriptions

    async def create_subscription(
        self,
        *,
        url: str,
        topics: Collection[Topic | str],
        description: str | None = None,
        enabled: bool = True,
        secret: str | None = None,
    ) -> tuple[SubscriptionRecord, str]:
        """Record a subscription; it receives the events appended from now on. Returns it and its secret (shown once).

        Raises:
            InvalidInput: the URL is refused by the outbound policy, a topic is unknown, or the secret malformed.
        """
        await self.check_url(url)
        chosen = _topics(topics)
        if description is not None:
            check_storable(description, "description")
        plain = check_secret(secret) if secret is not None else new_secret()
        now = self.clock.now()
        record = SubscriptionRecord(
            id=new_workflow_id(now),
            url=url,
            topics=chosen,
            description=description,
            enabled=enabled,
            secret=self.cipher.seal(plain),
            start_after=await log_position(self.log),
            created_at=now,
            updated_at=now,
            disabled_reason=None if enabled else "created disabled",
        )
        await self.store.create_subscription(record)
        return record, plain

    async def get_subscription(self, subscription_id: str) -> SubscriptionRecord:
        """The subscription; ``SubscriptionNotFound`` if there is none with that id."""
        found = await self.store.get_subscription(subscription_id)
        if found is None:
            raise SubscriptionNotFound(f"no webhook subscription {subscription_id!r}")
        return found

    async def list_subscriptions(self, *, after: str | None, limit: int) -> SubscriptionPage:
        """One page of subscriptions, oldest first."""
        return await self.store.find_subscriptions(after=after, limit=limit)

    async def update_subscription(
        self,
        subscription_id: str,
        *,
        url: str = UNSET,
        topics: Collection[Topic | str] = UNSET,
        description: str | None = UNSET,
        enabled: bool = UNSET,
    ) -> SubscriptionRecord:
        """Change what is given (URL, topics, description, enabled); the rest stays.

        Deliveries in flight are sent to the new URL from their next attempt; disabling stops them (they end
        ``dead``, replayable).

        Raises:
            SubscriptionNotFound: no such subscription.
            InvalidInput: as for :meth:`create_subscription`.
        """
        changes: dict[str, Any] = {}
        if url is not UNSET:
            await self.check_url(url)
            changes["url"] = url
        if topics is not UNSET:
            changes["topics"] = _topics(topics)
        if description is not UNSET:
            if description is not None:
                check_storable(description, "description")
            changes["description"] = description
        updated = await self._change(subscription_id, lambda current: self._with_enabled(current, changes, enabled))
        if not updated.enabled:
            await self._stop_in_flight(updated.id, "the subscription was disabled")
        return updated

    async def set_enabled(self, subscription_id: str, enabled: bool) -> SubscriptionRecord:
        """Enable or disable a subscription (see :meth:`update_subscription`)."""
        return await self.update_subscription(subscription_id, enabled=enabled)

    async def rotate_secret(
        self, subscription_id: str, *, secret: str | None = None, grace_seconds: float | None = None
    ) -> tuple[SubscriptionRecord, str]:
        """Replace the secret (a new one, or ``secret``); the old one signs too until the grace period ends.

        Returns the subscription and its new secret (shown once).
        """
        plain = check_secret(secret) if secret is not None else new_secret()
        grace = self.settings.rotation_grace_seconds if grace_seconds is None else grace_seconds
        if not 0 <= grace <= 30 * 86_400:
            raise InvalidInput("grace_seconds must be from 0 to 2592000 (30 days)", field="grace_seconds")

        def rotated(current: SubscriptionRecord) -> SubscriptionRecord:
            now = self.clock.now()
            kept = [previous for previous in current.previous_secrets if previous.expires_at > now]
            if grace > 0:
                kept.insert(0, PreviousSecret(secret=current.secret, expires_at=now + timedelta(seconds=grace)))
            return msgspec.structs.replace(
                current, secret=self.cipher.seal(plain), previous_secrets=tuple(kept), updated_at=now
            )

        return await self._change(subscription_id, rotated), plain

    async def delete_subscription(self, subscription_id: str) -> None:
        """Remove the subscription, its deliveries and their attempts; its workflows in flight are cancelled."""
        await self.get_subscription(subscription_id)
        await self._stop_in_flight(subscription_id, "the subscription was deleted")
        if not await self.store.delete_subscription(subscription_id):
            raise SubscriptionNotFound(f"no webhook subscription {subscription_id!r}")

    async def check_url(self, url: str) -> None:
        """``InvalidInput`` (field ``url``) unless the outbound policy allows ``url`` (its host is resolved now)."""
        check_storable(url, "url")
        try:
            async with asyncio.timeout(_RESOLVE_TIMEOUT):
                await self.policy.resolve(url, self._resolver)
        except OutboundURLRefused as exc:
            raise InvalidInput(exc.detail, field="url") from None
        except TimeoutError:
            raise InvalidInput(f"the URL's host did not resolve within {_RESOLVE_TIMEOUT:g} s", field="url") from None

    # Deliveries

    async def enqueue(self, subscription: SubscriptionRecord, event: ChangeEvent) -> bool:
        """Record the delivery of ``event`` to ``subscription`` and start its workflow; whether it was new.

        Idempotent: the delivery's id and its workflow's id are derived from the event and the subscription, so a
        second call (another relay, or this one after a crash) adds nothing and starts nothing.
        """
        now = self.clock.now()
        delivery = DeliveryRecord(
            webhook_id=webhook_id(subscription.id, event.id),
            subscription_id=subscription.id,
            event_id=event.id,
            topic=Topic(event.topic),
            state=DeliveryState.PENDING,
            body=envelope(event),
            created_at=now,
            updated_at=now,
        )
        added = await self.store.add_delivery(delivery)
        if added or await self.store.get_delivery(delivery.webhook_id) is not None:
            await self._start(delivery.webhook_id, 0)
        return added

    async def get_delivery(self, webhook_id: str) -> DeliveryRecord:
        """The delivery; ``DeliveryNotFound`` if there is none with that ``webhook-id``."""
        found = await self.store.get_delivery(webhook_id)
        if found is None:
            raise DeliveryNotFound(f"no delivery {webhook_id!r}")
        return found

    async def list_deliveries(self, query: DeliveryQuery) -> DeliveryPage:
        """One page of a subscription's deliveries, newest event first (``SubscriptionNotFound`` for none)."""
        await self.get_subscription(query.subscription_id)
        return await self.store.find_deliveries(query)

    async def list_attempts(self, webhook_id: str) -> list[AttemptRecord]:
        """Every attempt of a delivery, in every run, in order (``DeliveryNotFound`` for none)."""
        await self.get_delivery(webhook_id)
        return await self.store.list_attempts(webhook_id)

    async def replay(self, webhook_id: str) -> DeliveryRecord:
        """Send a finished delivery (delivered or dead) again: a new run, with the same ``webhook-id``.

        Raises:
            DeliveryNotFound: no such delivery.
            IllegalTransition: it is still in flight.
            InvalidInput: its subscription is disabled (enable it first).
        """
        current = await self.get_delivery(webhook_id)
        subscription = await self.get_subscription(current.subscription_id)
        if not subscription.enabled:
            raise InvalidInput("the delivery's subscription is disabled: enable it first", field="webhook_id")
        replayed = await self.store.replay_delivery(webhook_id, at=self.clock.now())
        await self._start(webhook_id, replayed.run)
        return replayed

    # Internals

    async def _start(self, webhook_id: str, run: int) -> None:
        with SetWorkflowID(dbos_delivery_id(webhook_id, run)):
            await DBOS.start_workflow_async(delivery_workflow, webhook_id, run)

    async def _change(
        self, subscription_id: str, change: Callable[[SubscriptionRecord], SubscriptionRecord]
    ) -> SubscriptionRecord:
        """Read, change and write back the subscription (compare-and-set on its revision, a few rounds)."""
        for _ in range(_CAS_ROUNDS):
            current = await self.get_subscription(subscription_id)
            updated = msgspec.structs.replace(change(current), revision=current.revision + 1)
            if await self.store.replace_subscription(updated, expected_revision=current.revision):
                return updated
        raise StaleWrite(f"webhook subscription {subscription_id!r} kept changing; try again")

    def _with_enabled(self, current: SubscriptionRecord, changes: dict[str, Any], enabled: bool) -> SubscriptionRecord:
        values = dict(changes)
        if enabled is not UNSET and enabled != current.enabled:
            values["enabled"] = enabled
            values["disabled_reason"] = None if enabled else "disabled by an admin"
        return msgspec.structs.replace(current, **values, updated_at=self.clock.now())

    async def _stop_in_flight(self, subscription_id: str, reason: str) -> None:
        """End the subscription's deliveries in flight (``dead``) and cancel their workflows."""
        after: int | None = None
        while True:
            page = await self.store.find_deliveries(
                DeliveryQuery(subscription_id=subscription_id, states=_IN_FLIGHT, after=after, limit=200)
            )
            for delivery in page.items:
                await self.store.abandon_delivery(
                    delivery.webhook_id, run=delivery.run, at=self.clock.now(), reason=reason
                )
                await DBOS.cancel_workflow_async(dbos_delivery_id(delivery.webhook_id, delivery.run))
            if page.next_after is None:
                return
            after = page.next_after


def _topics(topics: Collection[Topic | str]) -> tuple[Topic, ...]:
    if isinstance(topics, str) or not topics:
        raise InvalidInput("topics must name at least one topic of the catalog", field="topics")
    chosen = set()
    for topic in topics:
        try:
            chosen.add(Topic(topic))
        except ValueError:
            raise InvalidInput(f"unknown topic {str(topic)[:64]!r}", field="topics") from None
    return tuple(sorted(chosen))


# The workflow


@DBOS.workflow(name=WORKFLOW_NAME)
async def delivery_workflow(webhook_id: str, run: int) -> dict[str, Any]:
    """One run of one delivery, returning its last attempt's result.

    Attempts follow the schedule until one succeeds, the subscriber is gone, or the last one fails.
    """
    engine = _engine()
    task = asyncio.current_task()
    if task is not None:
        engine._tasks.add(task)
    try:
        return await _deliver(engine, webhook_id, run)
    finally:
        if task is not None:
            engine._tasks.discard(task)


async def _deliver(engine: WebhookEngine, webhook_id: str, run: int) -> dict[str, Any]:
    attempt = 1
    delay = engine.settings.schedule.delay_before(1, key=f"{webhook_id}:{run}")
    while True:
        if delay > 0:
            await engine.sleep(delay)
        options: StepOptions = {**_STEP_OPTIONS, "name": f"attempt#{run}.{attempt}"}
        result = await DBOS.run_step_async(options, _attempt, webhook_id, run, attempt)
        next_delay = result.get("next_delay")
        if next_delay is None:
            return result
        delay = float(next_delay)
        attempt += 1


_ABANDONED = {"outcome": "abandoned", "next_delay": None}


async def _attempt(webhook_id: str, run: int, attempt: int) -> dict[str, Any]:
    """One attempt (a DBOS step): sign, send, record, decide what comes next."""
    engine = _engine()
    store = engine.store
    delivery = await store.get_delivery(webhook_id)
    if delivery is None or delivery.run != run or delivery.state in FINISHED:
        return _ABANDONED
    if delivery.attempts >= attempt:
        return _recorded(engine, delivery)  # decided before a crash cut the step short: not sent again
    subscription = await store.get_subscription(delivery.subscription_id)
    if subscription is None:
        return _ABANDONED
    if not subscription.enabled:
        await store.abandon_delivery(webhook_id, run=run, at=engine.clock.now(), reason="the subscription is disabled")
        return _ABANDONED
    started = engine.clock.now()
    record = AttemptRecord(
        webhook_id=webhook_id, run=run, attempt=attempt, started_at=started, executor_id=engine.executor_id
    )
    await store.start_attempt(record)
    settings = engine.settings
    status_code: int | None = None
    error: str | None = None
    excerpt: str | None = None
    retry_after: float | None = None
    began = time.monotonic()
    try:
        current = subscription.previous_secrets
        secrets = [engine.cipher.open(subscription.secret)]
        secrets += [engine.cipher.open(previous.secret) for previous in current if previous.expires_at > started]
        headers = {
            **signature_headers(webhook_id=webhook_id, at=started, body=delivery.body, secrets=secrets),
            "content-type": "application/json",
            "user-agent": _USER_AGENT,
        }
        response = await engine.http.send(
            "POST",
            subscription.url,
            content=delivery.body.encode(),
            headers=headers,
            timeout_seconds=settings.timeout_seconds,
            max_body_bytes=settings.max_response_bytes,
        )
    except OutboundURLRefused as exc:
        error = _short(exc.detail)
    except ValueError as exc:  # no configured key opens the secret (the keys were changed): nothing is sent
        error = _short(f"not sent: {exc}")
    except TimeoutError:
        error = f"no answer within {settings.timeout_seconds:g} s"
    except (httpx.HTTPError, OSError) as exc:
        error = _describe(exc)
    else:
        status_code = response.status_code
        excerpt = _short(response.body.decode("utf-8", "replace"), _MAX_EXCERPT) if response.body else None
        retry_after = parse_retry_after(response.headers.get("retry-after"), engine.clock.now())
        if 300 <= status_code < 400:
            error = f"HTTP {status_code}: redirects are not followed"
        elif not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    latency_ms = round((time.monotonic() - began) * 1000)
    now = engine.clock.now()
    next_delay: float | None = None
    if status_code is not None and 200 <= status_code < 300:
        event, outcome = DeliveryEvent.SUCCEED, "delivered"
    elif status_code == 410:
        event, outcome = DeliveryEvent.GONE, "gone"
    else:
        next_delay = settings.schedule.next_delay(attempt, key=f"{webhook_id}:{run}", retry_after=retry_after)
        event, outcome = (DeliveryEvent.EXHAUST, "failed") if next_delay is None else (DeliveryEvent.FAIL, "failed")
    finished = msgspec.structs.replace(
        record,
        finished_at=now,
        outcome=outcome,
        status_code=status_code,
        latency_ms=latency_ms,
        error=error,
        response_excerpt=excerpt,
    )
    change = Outcome(
        event,
        at=now,
        next_attempt_at=now + timedelta(seconds=next_delay) if next_delay is not None else None,
        disable_reason=f"the subscriber answered 410 Gone at {now.isoformat()}"
        if event is DeliveryEvent.GONE
        else None,
    )
    try:
        stored = await store.finish_attempt(finished, change)
    except IllegalTransition:
        stored = None  # the delivery was stopped meanwhile (its subscription disabled or deleted)
    if stored is None or stored.run != run:
        return _ABANDONED
    if event is DeliveryEvent.GONE:
        logger.warning("litestar-registry: webhook subscription %s answered 410 Gone; it is disabled", subscription.id)
    return {"outcome": outcome, "status_code": status_code, "next_delay": next_delay}


def _recorded(engine: WebhookEngine, delivery: DeliveryRecord) -> dict[str, Any]:
    """What an attempt recorded before a crash decided: the remaining wait when it was retrying, else the end."""
    if delivery.state is not DeliveryState.RETRYING or delivery.next_attempt_at is None:
        return {"outcome": delivery.state.value, "next_delay": None}
    remaining = (delivery.next_attempt_at - engine.clock.now()).total_seconds()
    return {"outcome": "failed", "next_delay": max(0.0, remaining)}
