"""Migration d5f9b3a7c2e4 (webhooks) from the change log's revision, on SQLite and PostgreSQL: the four tables appear
with their indexes, exactly as the models say, serve the store, and the way down drops only them."""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from litestar_registry.store.sqlalchemy.migrate import current, downgrade, upgrade
from litestar_registry.webhooks.store.sqlalchemy import SQLAlchemyWebhookStore
from tests.test_migrations import Target, diff_on, postgres_target, target  # noqa: F401 - the fixtures, both databases
from tests.webhooks.test_store import delivery, subscription

PREVIOUS = "c4e8a2f6b1d3"
THIS = "d5f9b3a7c2e4"
TABLES = {
    "registry_webhook_subscriptions",
    "registry_webhook_deliveries",
    "registry_webhook_attempts",
    "registry_webhook_cursors",
}


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _delivery_indexes(conn: Connection) -> set[tuple[str, tuple[str, ...]]]:
    found = inspect(conn).get_indexes("registry_webhook_deliveries")
    return {(index["name"], tuple(index["column_names"])) for index in found}


async def test_the_webhook_tables_migrate_up_and_down(target: Target) -> None:  # noqa: F811
    options = target.engine_options
    await upgrade(target.url, PREVIOUS, engine_options=options)
    before = await target.run(_tables)
    assert not TABLES & before

    await upgrade(target.url, THIS, engine_options=options)
    assert await current(target.url, engine_options=options) == THIS
    assert await target.run(_tables) == before | TABLES
    assert await target.run(_delivery_indexes) == {
        ("ix_registry_webhook_deliveries_subscription", ("subscription_id", "event_id")),
        ("ix_registry_webhook_deliveries_subscription_state", ("subscription_id", "state", "event_id")),
        ("ix_registry_webhook_deliveries_state", ("state", "event_id")),
    }
    assert await target.run(diff_on(TABLES)) == []
    async with SQLAlchemyWebhookStore(target.url, engine_options=options) as store:
        sub = subscription()
        await store.create_subscription(sub)
        assert await store.add_delivery(delivery(sub, 1))
        assert await store.get_subscription(sub.id) == sub
        assert await store.advance_cursor(5) == 5

    await downgrade(target.url, PREVIOUS, engine_options=options)
    assert await target.run(_tables) == before
    await downgrade(target.url, "base", engine_options=options)
