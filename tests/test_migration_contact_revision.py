"""Migration 5c0e7a1d2b3f (``contact_revision``) from the previous revision, on SQLite and PostgreSQL: every row and
its history stay, contact starts counting at 1, the data revision is kept, and the way down drops only the column."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import msgspec
from sqlalchemy import Table, inspect, select
from sqlalchemy.engine import Connection

from litestar_registry.core import states
from litestar_registry.core.models import Contact, Rewrite, ServiceStatus
from litestar_registry.store.sqlalchemy import SQLAlchemyServiceStore
from litestar_registry.store.sqlalchemy.migrate import current, downgrade, upgrade
from litestar_registry.store.sqlalchemy.models import ServiceModel
from tests.records import T0, first_version, insert_rows, make_record
from tests.test_migrations import Target, postgres_target, target  # noqa: F401 - the fixtures, on both databases

PREVIOUS = "1d2be37eea6f"
THIS = "5c0e7a1d2b3f"
SERVICES = cast("Table", ServiceModel.__table__)


def _columns(conn: Connection) -> dict[str, dict[str, Any]]:
    return {column["name"]: column for column in inspect(conn).get_columns("registry_services")}


async def test_contact_revision_migrates_up_and_down_keeping_every_row(target: Target) -> None:  # noqa: F811
    options = target.engine_options
    await upgrade(target.url, PREVIOUS, engine_options=options)
    records = [make_record(f"kept-{i}", revision=revision) for i, revision in enumerate((4, 5, 6))]
    await target.run(lambda conn: insert_rows(conn, *records))
    assert "contact_revision" not in await target.run(_columns)

    await upgrade(target.url, THIS, engine_options=options)
    assert await current(target.url, engine_options=options) == THIS
    column = (await target.run(_columns))["contact_revision"]
    assert (column["nullable"], str(column["default"]).strip("'")) == (False, "1")  # as the model declares it
    indexes = await target.run(lambda conn: inspect(conn).get_indexes("registry_services"))
    assert [index["name"] for index in indexes] == ["ix_registry_services_next_check"]
    await upgrade(target.url, engine_options=options)  # the store writes the head's schema (the label table)
    async with SQLAlchemyServiceStore(target.url, engine_options=options) as store:
        for record in records:
            assert await store.get(record.slug) == msgspec.structs.replace(record, contact_revision=1)
            assert await store.versions(record.slug) == [first_version(record)]
        contact = Contact(at=T0 + timedelta(seconds=1), status=ServiceStatus.ACTIVE, from_statuses=states.LIVE)
        touched = await store.touch("kept-0", contact)
        assert (touched.revision, touched.contact_revision) == (4, 2)
        written = await store.replace(
            msgspec.structs.replace(records[0], name="Renamed"), expected_revision=4, rewrite=Rewrite()
        )
        assert (written.revision, written.contact_revision, written.last_seen_at) == (5, 2, contact.at)

    await downgrade(target.url, PREVIOUS, engine_options=options)
    assert "contact_revision" not in await target.run(_columns)
    slugs = await target.run(
        lambda conn: conn.execute(select(SERVICES.c.slug).order_by(SERVICES.c.slug)).scalars().all()
    )
    assert list(slugs) == [record.slug for record in records]
    await downgrade(target.url, "base", engine_options=options)
