"""Migration c4e8a2f6b1d3 (the change log) from the previous revision, on SQLite and PostgreSQL: existing services stay,
the log and its counter appear with their indexes and serve the store, and the way down drops only them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from litestar_registry.core.events import Topic, service_draft
from litestar_registry.core.models import Contact, ServiceStatus
from litestar_registry.store.sqlalchemy import SQLAlchemyServiceStore
from litestar_registry.store.sqlalchemy.migrate import current, downgrade, upgrade
from tests.records import T0, first_version, insert_rows, make_record
from tests.test_migrations import (  # noqa: F401 - the fixtures, both databases
    Target,
    diff_on,
    postgres_target,
    target,
    without_later_drops,
)

PREVIOUS = "b7d3e5f1a9c2"
THIS = "c4e8a2f6b1d3"
LOG_TABLES = {"registry_events", "registry_event_counter"}


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _event_indexes(conn: Connection) -> set[tuple[str, tuple[str, ...]]]:
    return {(index["name"], tuple(index["column_names"])) for index in inspect(conn).get_indexes("registry_events")}


async def test_the_change_log_migrates_up_and_down_keeping_every_service(target: Target) -> None:  # noqa: F811
    options = target.engine_options
    await upgrade(target.url, PREVIOUS, engine_options=options)
    records = [make_record("kept-0"), make_record("kept-1", status=ServiceStatus.DEGRADED)]
    await target.run(lambda conn: insert_rows(conn, *records, omit=()))
    assert not LOG_TABLES & await target.run(_tables)

    await upgrade(target.url, THIS, engine_options=options)
    assert await current(target.url, engine_options=options) == THIS
    assert await target.run(_tables) >= LOG_TABLES
    assert await target.run(_event_indexes) == {
        ("ix_registry_events_occurred_at", ("occurred_at",)),
        ("ix_registry_events_subject", ("subject", "id")),
    }
    assert await target.run(without_later_drops(diff_on(LOG_TABLES | {"registry_services"}))) == []
    await upgrade(target.url, engine_options=options)  # the store writes the head's schema (the label table)
    async with SQLAlchemyServiceStore(target.url, engine_options=options) as store:
        assert (await store.read_events()).last_id == 0  # no counter row yet: the first append creates it
        contact = Contact(
            at=T0 + timedelta(seconds=1),
            status=ServiceStatus.ACTIVE,
            from_statuses=frozenset({ServiceStatus.ACTIVE, ServiceStatus.DEGRADED}),
        )
        assert (await store.touch_logged("kept-1", contact)).topic is Topic.SERVICE_RECOVERED
        new = make_record("new")
        await store.create(new, first_version(new), events=[service_draft(Topic.SERVICE_REGISTERED, new, T0)])
        page = await store.read_events()
        assert [(e.id, e.topic, e.subject) for e in page.items] == [
            (1, Topic.SERVICE_RECOVERED, "kept-1"),
            (2, Topic.SERVICE_REGISTERED, "new"),
        ]
        assert page.last_id == 2

    await downgrade(target.url, PREVIOUS, engine_options=options)
    assert not LOG_TABLES & await target.run(_tables)
    async with SQLAlchemyServiceStore(target.url, engine_options=options) as store:
        assert {r.slug for r in [await store.get(s) for s in ("kept-0", "kept-1", "new")] if r} == {
            "kept-0",
            "kept-1",
            "new",
        }
    await downgrade(target.url, "base", engine_options=options)
