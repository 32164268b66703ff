"""The webhook read model, one contract on every backend (memory, SQLite, PostgreSQL): subscriptions compare-and-set,
deliveries added once, outcomes applied once and by the state table, a 410 disabling its subscription in the same
write, replays, the relay's cursor, and deletion taking deliveries and attempts along."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from litestar_registry.core.errors import IllegalTransition
from litestar_registry.core.events import Topic
from litestar_registry.provisioning.models import new_workflow_id
from litestar_registry.webhooks.errors import DeliveryNotFound
from litestar_registry.webhooks.models import (
    AttemptRecord,
    DeliveryQuery,
    DeliveryRecord,
    PreviousSecret,
    SubscriptionRecord,
    webhook_id,
)
from litestar_registry.webhooks.states import DeliveryEvent, DeliveryState
from litestar_registry.webhooks.store import Outcome, WebhookStore
from tests.provisioning.conftest import sqlite_url

T0 = datetime(2026, 12, 1, tzinfo=UTC)
S = DeliveryState


def subscription(at: datetime = T0, **fields: object) -> SubscriptionRecord:
    values: dict[str, object] = {
        "id": new_workflow_id(at),
        "url": "https://hooks.example/in",
        "topics": (Topic.SERVICE_DEREGISTERED, Topic.SERVICE_REGISTERED),
        "description": "ops",
        "enabled": True,
        "secret": {"$sealed": "token"},
        "start_after": 0,
        "created_at": at,
        "updated_at": at,
        **fields,
    }
    return SubscriptionRecord(**values)  # type: ignore[arg-type]


def delivery(sub: SubscriptionRecord, event_id: int, **fields: object) -> DeliveryRecord:
    return DeliveryRecord(
        webhook_id=webhook_id(sub.id, event_id),
        subscription_id=sub.id,
        event_id=event_id,
        topic=Topic.SERVICE_REGISTERED,
        state=S.PENDING,
        body='{"type":"service.registered"}',
        created_at=T0,
        updated_at=T0,
        **fields,  # type: ignore[arg-type]
    )


def attempt(found: DeliveryRecord, number: int, *, run: int = 0, **fields: object) -> AttemptRecord:
    return AttemptRecord(
        webhook_id=found.webhook_id,
        run=run,
        attempt=number,
        started_at=T0,
        executor_id="local",
        **fields,  # type: ignore[arg-type]
    )


async def test_subscriptions_page_in_creation_order_and_compare_and_set(webhook_store: WebhookStore) -> None:
    created = [subscription(T0 + timedelta(milliseconds=n)) for n in range(5)]
    for record in created:
        await webhook_store.create_subscription(record)
    first = await webhook_store.find_subscriptions(after=None, limit=2)
    assert [s.id for s in first.items] == [s.id for s in created[:2]]
    rest = await webhook_store.find_subscriptions(after=first.next_after, limit=10)
    assert [s.id for s in rest.items] == [s.id for s in created[2:]]
    assert rest.next_after is None
    assert await webhook_store.get_subscription(created[0].id) == created[0]  # every field back as stored

    rotated = msgspec.structs.replace(
        created[0],
        enabled=False,
        disabled_reason="disabled by an admin",
        previous_secrets=(PreviousSecret(secret={"$sealed": "old"}, expires_at=T0 + timedelta(days=1)),),
        revision=2,
    )
    assert await webhook_store.replace_subscription(rotated, expected_revision=1)
    assert not await webhook_store.replace_subscription(rotated, expected_revision=1)  # stale: nothing written
    assert await webhook_store.get_subscription(created[0].id) == rotated
    assert [s.id for s in await webhook_store.enabled_subscriptions()] == [s.id for s in created[1:]]


async def test_a_delivery_is_added_once_even_by_concurrent_relays(webhook_store: WebhookStore) -> None:
    sub = subscription()
    await webhook_store.create_subscription(sub)
    added = await asyncio.gather(*(webhook_store.add_delivery(delivery(sub, 7)) for _ in range(8)))
    assert sorted(added) == [False] * 7 + [True]
    other = subscription(T0 + timedelta(seconds=1))
    assert not await webhook_store.add_delivery(delivery(other, 7))  # no such subscription
    assert await webhook_store.get_delivery(webhook_id(other.id, 7)) is None


async def test_outcomes_apply_once_in_order_and_by_the_table(webhook_store: WebhookStore) -> None:
    sub = subscription()
    await webhook_store.create_subscription(sub)
    found = delivery(sub, 1)
    await webhook_store.add_delivery(found)
    later = T0 + timedelta(seconds=5)
    first = attempt(found, 1, status_code=503, outcome="failed", error="HTTP 503", finished_at=T0)
    await webhook_store.start_attempt(attempt(found, 1))
    retrying = await webhook_store.finish_attempt(first, Outcome(DeliveryEvent.FAIL, at=T0, next_attempt_at=later))
    assert retrying is not None
    assert (retrying.state, retrying.attempts, retrying.next_attempt_at, retrying.last_status_code) == (
        S.RETRYING,
        1,
        later,
        503,
    )
    # The same outcome again (a step re-run after a crash) changes nothing.
    again = await webhook_store.finish_attempt(first, Outcome(DeliveryEvent.FAIL, at=later, next_attempt_at=later))
    assert again == retrying
    # An attempt out of order (3 before 2) is not applied either.
    assert await webhook_store.finish_attempt(attempt(found, 3), Outcome(DeliveryEvent.SUCCEED, at=later)) == retrying
    done = await webhook_store.finish_attempt(
        attempt(found, 2, status_code=204, outcome="delivered"), Outcome(DeliveryEvent.SUCCEED, at=later)
    )
    assert done is not None
    assert (done.state, done.attempts, done.finished_at, done.next_attempt_at) == (S.DELIVERED, 2, later, None)
    with pytest.raises(IllegalTransition):  # delivered takes no attempt's outcome
        await webhook_store.finish_attempt(attempt(found, 3), Outcome(DeliveryEvent.FAIL, at=later))
    assert await webhook_store.get_delivery(found.webhook_id) == done
    assert [(a.attempt, a.status_code) for a in await webhook_store.list_attempts(found.webhook_id)] == [
        (1, 503),
        (2, 204),
    ]


async def test_a_410_ends_the_delivery_and_disables_the_subscription_in_one_write(webhook_store: WebhookStore) -> None:
    sub = subscription()
    await webhook_store.create_subscription(sub)
    found = delivery(sub, 1)
    await webhook_store.add_delivery(found)
    dead = await webhook_store.finish_attempt(
        attempt(found, 1, status_code=410, outcome="gone"),
        Outcome(DeliveryEvent.GONE, at=T0, disable_reason="the subscriber answered 410 Gone"),
    )
    assert dead is not None
    assert dead.state is S.DEAD
    stored = await webhook_store.get_subscription(sub.id)
    assert stored is not None
    assert (stored.enabled, stored.disabled_reason, stored.revision) == (False, "the subscriber answered 410 Gone", 2)


async def test_replay_abandon_and_listing_by_state(webhook_store: WebhookStore) -> None:
    sub = subscription()
    await webhook_store.create_subscription(sub)
    for event_id in range(1, 6):
        await webhook_store.add_delivery(delivery(sub, event_id))
    with pytest.raises(IllegalTransition):
        await webhook_store.replay_delivery(webhook_id(sub.id, 1), at=T0)  # still in flight
    with pytest.raises(DeliveryNotFound):
        await webhook_store.replay_delivery(webhook_id(sub.id, 99), at=T0)
    for event_id in (2, 4):
        abandoned = await webhook_store.abandon_delivery(webhook_id(sub.id, event_id), run=0, at=T0, reason="off")
        assert abandoned is not None
        assert (abandoned.state, abandoned.last_error) == (S.DEAD, "off")
    dead = await webhook_store.find_deliveries(DeliveryQuery(subscription_id=sub.id, states=frozenset({S.DEAD})))
    assert [d.event_id for d in dead.items] == [4, 2]  # newest first
    page = await webhook_store.find_deliveries(DeliveryQuery(subscription_id=sub.id, limit=2))
    assert [d.event_id for d in page.items] == [5, 4]
    page = await webhook_store.find_deliveries(DeliveryQuery(subscription_id=sub.id, after=page.next_after, limit=2))
    assert ([d.event_id for d in page.items], page.next_after) == ([3, 2], 2)
    assert [d.event_id for d in await webhook_store.in_flight_deliveries()] == [1, 3, 5]

    replayed = await webhook_store.replay_delivery(webhook_id(sub.id, 2), at=T0 + timedelta(hours=1))
    assert (replayed.state, replayed.run, replayed.attempts, replayed.finished_at) == (S.PENDING, 1, 0, None)
    assert await webhook_store.get_delivery(replayed.webhook_id) == replayed
    # A late write of the superseded run 0 changes nothing.
    late = await webhook_store.abandon_delivery(replayed.webhook_id, run=0, at=T0, reason="late")
    assert late == replayed


async def test_the_cursor_never_goes_back(webhook_store: WebhookStore) -> None:
    assert await webhook_store.get_cursor() == 0
    assert await webhook_store.advance_cursor(10) == 10
    assert await webhook_store.advance_cursor(4) == 10
    assert await webhook_store.advance_cursor(11) == 11
    assert await webhook_store.get_cursor() == 11
    assert await webhook_store.get_cursor("other") == 0


async def test_deleting_a_subscription_takes_its_deliveries_and_attempts(webhook_store: WebhookStore) -> None:
    keep, drop = subscription(), subscription(T0 + timedelta(seconds=1))
    for sub in (keep, drop):
        await webhook_store.create_subscription(sub)
        found = delivery(sub, 1)
        await webhook_store.add_delivery(found)
        await webhook_store.start_attempt(attempt(found, 1))
    assert await webhook_store.delete_subscription(drop.id)
    assert not await webhook_store.delete_subscription(drop.id)
    assert await webhook_store.get_subscription(drop.id) is None
    assert await webhook_store.get_delivery(webhook_id(drop.id, 1)) is None
    assert await webhook_store.list_attempts(webhook_id(drop.id, 1)) == []
    assert len(await webhook_store.list_attempts(webhook_id(keep.id, 1))) == 1


async def test_writes_are_transactions_also_on_the_registry_stores_autocommit_engine(tmp_path: Path) -> None:
    """Beside a SQLite registry store the webhook records share its engine, whose connections start in autocommit."""
    from sqlalchemy import insert

    from litestar_registry.store.sqlalchemy import SQLAlchemyServiceStore
    from litestar_registry.webhooks.store.sqlalchemy import SQLAlchemyWebhookStore, _plain, _subscriptions

    async with (
        SQLAlchemyServiceStore(url=sqlite_url(tmp_path), create_schema=True) as registry,
        SQLAlchemyWebhookStore(engine=registry.engine) as store,
    ):
        record = subscription()

        async def half_way() -> None:
            async with store._write() as conn:
                await conn.execute(insert(_subscriptions).values(**_plain(msgspec.structs.asdict(record))))
                raise RuntimeError("half way")

        with pytest.raises(RuntimeError, match="half way"):
            await half_way()
        assert await store.get_subscription(record.id) is None  # rolled back, not committed on its own
