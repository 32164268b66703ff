"""The SQL webhook store: SQLite for one app instance, PostgreSQL for several.

Adding a delivery is ``INSERT ... ON CONFLICT DO NOTHING`` on its ``webhook-id``: of several relays adding the same
delivery, the database lets one win. An attempt's outcome reads the delivery ``FOR UPDATE`` (PostgreSQL; SQLite has
one writer, and the store queues its own writes), decides with the shared rules of :mod:`.base`, and writes the
attempt, the delivery and (for a 410) the subscription in one transaction. Subscriptions are replaced
``WHERE revision = :read`` (compare-and-set).
"""

# The methods inherit their docstrings from WebhookStore.
# ruff: noqa: D102

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, cast

import msgspec
from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from litestar_registry.store.sqlalchemy.read_model import SQLReadModel
from litestar_registry.webhooks.errors import DeliveryNotFound
from litestar_registry.webhooks.models import (
    AttemptRecord,
    DeliveryPage,
    DeliveryQuery,
    DeliveryRecord,
    SubscriptionPage,
    SubscriptionRecord,
)
from litestar_registry.webhooks.states import DeliveryEvent, DeliveryState, delivery_sources
from litestar_registry.webhooks.store.base import (
    RELAY_CURSOR,
    Outcome,
    WebhookStore,
    outcome_values,
    replay_values,
)
from litestar_registry.webhooks.store.tables import (
    WebhookAttemptModel,
    WebhookCursorModel,
    WebhookDeliveryModel,
    WebhookSubscriptionModel,
)

__all__ = ("SQLAlchemyWebhookStore",)

_subscriptions = cast("Table", WebhookSubscriptionModel.__table__)
_deliveries = cast("Table", WebhookDeliveryModel.__table__)
_attempts = cast("Table", WebhookAttemptModel.__table__)
_cursors = cast("Table", WebhookCursorModel.__table__)
_IN_FLIGHT = sorted(state.value for state in (DeliveryState.PENDING, DeliveryState.RETRYING))


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Column values: enums as their strings, tuples of Structs as JSON-ready lists."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, tuple):
            value = msgspec.to_builtins(value)
        out[key] = value
    return out


def _subscription(row: RowMapping) -> SubscriptionRecord:
    return msgspec.convert(dict(row), SubscriptionRecord)


def _delivery(row: RowMapping) -> DeliveryRecord:
    return msgspec.convert(dict(row), DeliveryRecord)


def _attempt(row: RowMapping) -> AttemptRecord:
    return msgspec.convert(dict(row), AttemptRecord)


class SQLAlchemyWebhookStore(SQLReadModel, WebhookStore):
    """Webhook records in SQL through SQLAlchemy's asyncio engine (SQLite or PostgreSQL).

    Give ``url`` (the store creates its engine in :meth:`open` and disposes it in :meth:`close`) or ``engine`` (shared,
    for instance the registry store's; never disposed here).
    """

    kind = "webhook"

    def _insert(self, table: Table) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    # Subscriptions

    async def create_subscription(self, subscription: SubscriptionRecord) -> None:
        async with self._write() as conn:
            await conn.execute(insert(_subscriptions).values(**_plain(msgspec.structs.asdict(subscription))))

    async def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        async with self._read() as conn:
            row = (
                (await conn.execute(select(_subscriptions).where(_subscriptions.c.id == subscription_id)))
                .mappings()
                .first()
            )
        return _subscription(row) if row is not None else None

    async def find_subscriptions(self, *, after: str | None, limit: int) -> SubscriptionPage:
        statement = select(_subscriptions)
        if after is not None:
            statement = statement.where(_subscriptions.c.id > after)
        statement = statement.order_by(_subscriptions.c.id).limit(limit + 1)
        async with self._read() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        items = [_subscription(row) for row in rows[:limit]]
        return SubscriptionPage(items=items, next_after=items[-1].id if len(rows) > limit else None)

    async def enabled_subscriptions(self) -> list[SubscriptionRecord]:
        statement = select(_subscriptions).where(_subscriptions.c.enabled.is_(True)).order_by(_subscriptions.c.id)
        async with self._read() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        return [_subscription(row) for row in rows]

    async def replace_subscription(self, subscription: SubscriptionRecord, *, expected_revision: int) -> bool:
        values = _plain(msgspec.structs.asdict(subscription))
        del values["id"]
        statement = (
            update(_subscriptions)
            .where(_subscriptions.c.id == subscription.id, _subscriptions.c.revision == expected_revision)
            .values(**values)
        )
        async with self._write() as conn:
            return bool((await conn.execute(statement)).rowcount)

    async def delete_subscription(self, subscription_id: str) -> bool:
        # Not left to ON DELETE CASCADE: SQLite enforces it only on connections that turned PRAGMA foreign_keys on.
        owned = select(_deliveries.c.webhook_id).where(_deliveries.c.subscription_id == subscription_id)
        async with self._write() as conn:
            await conn.execute(delete(_attempts).where(_attempts.c.webhook_id.in_(owned)))
            await conn.execute(delete(_deliveries).where(_deliveries.c.subscription_id == subscription_id))
            deleted = await conn.execute(delete(_subscriptions).where(_subscriptions.c.id == subscription_id))
        return bool(deleted.rowcount)

    # Deliveries

    async def add_delivery(self, delivery: DeliveryRecord) -> bool:
        statement = (
            self._insert(_deliveries)
            .values(**_plain(msgspec.structs.asdict(delivery)))
            .on_conflict_do_nothing(index_elements=["webhook_id"])
        )
        exists = select(_subscriptions.c.id).where(_subscriptions.c.id == delivery.subscription_id)
        try:
            async with self._write() as conn:
                if (await conn.execute(exists)).first() is None:
                    return False  # deleted meanwhile (PostgreSQL's foreign key would refuse it too)
                return bool((await conn.execute(statement)).rowcount)
        except IntegrityError:
            return False  # the subscription was deleted between the check and the insert

    async def get_delivery(self, webhook_id: str) -> DeliveryRecord | None:
        async with self._read() as conn:
            row = (
                (await conn.execute(select(_deliveries).where(_deliveries.c.webhook_id == webhook_id)))
                .mappings()
                .first()
            )
        return _delivery(row) if row is not None else None

    async def find_deliveries(self, query: DeliveryQuery) -> DeliveryPage:
        statement = select(_deliveries).where(_deliveries.c.subscription_id == query.subscription_id)
        if query.states is not None:
            statement = statement.where(_deliveries.c.state.in_(sorted(state.value for state in query.states)))
        if query.after is not None:
            statement = statement.where(_deliveries.c.event_id < query.after)
        statement = statement.order_by(_deliveries.c.event_id.desc()).limit(query.limit + 1)
        async with self._read() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        items = [_delivery(row) for row in rows[: query.limit]]
        return DeliveryPage(items=items, next_after=items[-1].event_id if len(rows) > query.limit else None)

    async def in_flight_deliveries(self, limit: int = 1000) -> list[DeliveryRecord]:
        statement = (
            select(_deliveries).where(_deliveries.c.state.in_(_IN_FLIGHT)).order_by(_deliveries.c.event_id).limit(limit)
        )
        async with self._read() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        return [_delivery(row) for row in rows]

    async def replay_delivery(self, webhook_id: str, *, at: datetime) -> DeliveryRecord:
        async with self._write() as conn:
            current = await self._locked_delivery(conn, webhook_id)
            if current is None:
                raise DeliveryNotFound(f"no delivery {webhook_id!r}")
            values = replay_values(current, at)
            await conn.execute(
                update(_deliveries).where(_deliveries.c.webhook_id == webhook_id).values(**_plain(values))
            )
        return msgspec.structs.replace(current, **values)

    async def abandon_delivery(self, webhook_id: str, *, run: int, at: datetime, reason: str) -> DeliveryRecord | None:
        sources = sorted(state.value for state in delivery_sources(DeliveryEvent.ABANDON))
        values = {
            "state": DeliveryState.DEAD.value,
            "updated_at": at,
            "next_attempt_at": None,
            "last_error": reason,
            "finished_at": at,
        }
        statement = (
            update(_deliveries)
            .where(_deliveries.c.webhook_id == webhook_id, _deliveries.c.run == run, _deliveries.c.state.in_(sources))
            .values(**values)
        )
        async with self._write() as conn:
            await conn.execute(statement)
            row = (
                (await conn.execute(select(_deliveries).where(_deliveries.c.webhook_id == webhook_id)))
                .mappings()
                .first()
            )
        return _delivery(row) if row is not None else None

    # Attempts

    async def get_attempt(self, webhook_id: str, run: int, attempt: int) -> AttemptRecord | None:
        statement = select(_attempts).where(
            _attempts.c.webhook_id == webhook_id, _attempts.c.run == run, _attempts.c.attempt == attempt
        )
        async with self._read() as conn:
            row = (await conn.execute(statement)).mappings().first()
        return _attempt(row) if row is not None else None

    async def start_attempt(self, attempt: AttemptRecord) -> None:
        async with self._write() as conn:
            await self._put_attempt(conn, attempt)

    async def finish_attempt(self, attempt: AttemptRecord, outcome: Outcome) -> DeliveryRecord | None:
        async with self._write() as conn:
            current = await self._locked_delivery(conn, attempt.webhook_id)
            if current is None:
                return None
            values = outcome_values(current, attempt, outcome)  # IllegalTransition: rolled back
            if values is None:
                return current  # written before, with the attempt, in one transaction
            await self._put_attempt(conn, attempt)
            await conn.execute(
                update(_deliveries).where(_deliveries.c.webhook_id == attempt.webhook_id).values(**_plain(values))
            )
            if outcome.event is DeliveryEvent.GONE:
                await conn.execute(
                    update(_subscriptions)
                    .where(_subscriptions.c.id == current.subscription_id, _subscriptions.c.enabled.is_(True))
                    .values(
                        enabled=False,
                        disabled_reason=outcome.disable_reason,
                        updated_at=outcome.at,
                        revision=_subscriptions.c.revision + 1,
                    )
                )
        return msgspec.structs.replace(current, **values)

    async def list_attempts(self, webhook_id: str) -> list[AttemptRecord]:
        statement = (
            select(_attempts).where(_attempts.c.webhook_id == webhook_id).order_by(_attempts.c.run, _attempts.c.attempt)
        )
        async with self._read() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        return [_attempt(row) for row in rows]

    # The relay's cursor

    async def get_cursor(self, name: str = RELAY_CURSOR) -> int:
        async with self._read() as conn:
            value = (await conn.execute(select(_cursors.c.position).where(_cursors.c.name == name))).scalar()
        return int(value or 0)

    async def advance_cursor(self, to: int, name: str = RELAY_CURSOR) -> int:
        statement = self._insert(_cursors).values(name=name, position=to)
        statement = statement.on_conflict_do_update(
            index_elements=["name"],
            set_={"position": to},
            where=_cursors.c.position < to,
        )
        async with self._write() as conn:
            await conn.execute(statement)
            value = (await conn.execute(select(_cursors.c.position).where(_cursors.c.name == name))).scalar()
        return int(value or 0)

    # Internals

    async def _locked_delivery(self, conn: AsyncConnection, webhook_id: str) -> DeliveryRecord | None:
        statement = select(_deliveries).where(_deliveries.c.webhook_id == webhook_id).with_for_update()
        row = (await conn.execute(statement)).mappings().first()
        return _delivery(row) if row is not None else None

    async def _put_attempt(self, conn: AsyncConnection, attempt: AttemptRecord) -> None:
        values = _plain(msgspec.structs.asdict(attempt))
        statement = self._insert(_attempts).values(**values)
        keys = ("webhook_id", "run", "attempt")
        statement = statement.on_conflict_do_update(
            index_elements=list(keys),
            set_={key: value for key, value in values.items() if key not in keys},
        )
        exists = select(_deliveries.c.webhook_id).where(_deliveries.c.webhook_id == attempt.webhook_id)
        if (await conn.execute(exists)).first() is not None:
            await conn.execute(statement)

    async def _clear_for_tests(self) -> None:
        """Delete every webhook row (the server backends are shared between tests)."""
        async with self._write() as conn:
            for table in (_attempts, _deliveries, _subscriptions, _cursors):
                await conn.execute(delete(table))
