"""Migration b7d3e5f1a9c2 (filter indexes) from the previous revision, on SQLite and PostgreSQL: every row stays, the
status index (and on PostgreSQL the GIN indexes on tags and capabilities) appear, and the way down drops only them."""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from litestar_registry.core.models import ServiceQuery, ServiceStatus
from litestar_registry.store.sqlalchemy import SQLAlchemyServiceStore
from litestar_registry.store.sqlalchemy.migrate import current, downgrade, upgrade
from tests.records import first_version, insert_rows, make_record
from tests.test_migrations import (  # noqa: F401 - the fixtures, both databases
    Target,
    diff_on,
    postgres_target,
    target,
    without_later_drops,
)

PREVIOUS = "9e4b2f6a7c1d"
THIS = "b7d3e5f1a9c2"


def _indexes(conn: Connection) -> set[str]:
    return {index["name"] for index in inspect(conn).get_indexes("registry_services")}


async def test_filter_indexes_migrate_up_and_down_keeping_every_row(target: Target) -> None:  # noqa: F811
    options = target.engine_options
    await upgrade(target.url, PREVIOUS, engine_options=options)
    records = [
        make_record("kept-0", tags=("edge",), capabilities=("route",)),
        make_record("kept-1", status=ServiceStatus.PENDING, next_check_at=None),
        make_record("kept-2"),
    ]
    await target.run(lambda conn: insert_rows(conn, *records, omit=()))
    assert await target.run(_indexes) == {"ix_registry_services_next_check"}

    await upgrade(target.url, THIS, engine_options=options)
    assert await current(target.url, engine_options=options) == THIS
    added = {"ix_registry_services_status"}
    if target.url.startswith("postgresql"):
        added |= {"ix_registry_services_tags", "ix_registry_services_capabilities"}
    assert await target.run(_indexes) == {"ix_registry_services_next_check", *added}
    assert await target.run(without_later_drops(diff_on({"registry_services", "registry_service_versions"}))) == []
    async with SQLAlchemyServiceStore(target.url, engine_options=options) as store:
        pending = ServiceQuery(statuses=frozenset({ServiceStatus.PENDING}))
        assert [r.slug for r in (await store.find(pending)).items] == ["kept-1"]

    await upgrade(target.url, engine_options=options)  # the tag and capability filters read the head's label table
    async with SQLAlchemyServiceStore(target.url, engine_options=options) as store:
        for record in records:
            assert await store.versions(record.slug) == [first_version(record)]
        assert [r.slug for r in (await store.find(ServiceQuery(tag="edge"))).items] == ["kept-0"]
        assert [r.slug for r in (await store.find(ServiceQuery(capability="route"))).items] == ["kept-0"]
        pending = ServiceQuery(statuses=frozenset({ServiceStatus.PENDING}))
        assert [r.slug for r in (await store.find(pending)).items] == ["kept-1"]

    await downgrade(target.url, PREVIOUS, engine_options=options)
    assert await target.run(_indexes) == {"ix_registry_services_next_check"}
    async with SQLAlchemyServiceStore(target.url, engine_options=options) as store:
        assert [r.slug for r in (await store.find(ServiceQuery())).items] == [r.slug for r in records]
    await downgrade(target.url, "base", engine_options=options)
