"""Migration e6a8c1f3d5b7 (service labels) from the previous revision, on SQLite and PostgreSQL: the label table is
filled from the services already there, the tag and capability filters answer from it, the GIN indexes go, and the way
down restores them and drops only the table."""

from __future__ import annotations

from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from litestar_registry.core.models import ServiceQuery, ServiceStatus
from litestar_registry.store.sqlalchemy import SQLAlchemyServiceStore
from litestar_registry.store.sqlalchemy.migrate import current, downgrade, upgrade
from litestar_registry.store.sqlalchemy.store import _labels
from tests.records import insert_rows, make_record
from tests.test_migrations import Target, diff_on, postgres_target, target  # noqa: F401 - the fixtures, both databases

PREVIOUS = "d5f9b3a7c2e4"
THIS = "e6a8c1f3d5b7"
GIN = {"ix_registry_services_tags", "ix_registry_services_capabilities"}


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _indexes(conn: Connection) -> set[str]:
    return {index["name"] for index in inspect(conn).get_indexes("registry_services")}


def _label_rows(conn: Connection) -> set[tuple[str, str, str]]:
    return {(row.kind, row.value, row.slug) for row in conn.execute(select(_labels))}


async def _slugs(store: SQLAlchemyServiceStore, **filters: object) -> list[str]:
    return [record.slug for record in (await store.find(ServiceQuery(**filters))).items]  # type: ignore[arg-type]


async def test_the_labels_migrate_up_from_existing_services_and_down(target: Target) -> None:  # noqa: F811
    options = target.engine_options
    gin = GIN if target.url.startswith("postgresql") else set()
    await upgrade(target.url, PREVIOUS, engine_options=options)
    records = [
        make_record("a-edge", tags=("edge", "core"), capabilities=("route",)),
        make_record("b-twice", tags=("edge", "edge"), capabilities=("route", "search", "route")),
        make_record("c-bare", tags=(), capabilities=(), status=ServiceStatus.PENDING, next_check_at=None),
        make_record("d-core", tags=("core",), capabilities=("search",), status=ServiceStatus.DEGRADED),
    ]
    await target.run(lambda conn: insert_rows(conn, *records, omit=()))
    assert "registry_service_labels" not in await target.run(_tables)
    assert await target.run(_indexes) & GIN == gin  # PostgreSQL only

    await upgrade(target.url, THIS, engine_options=options)
    assert await current(target.url, engine_options=options) == THIS
    assert await target.run(_label_rows) == {  # each label once per service, duplicates in an array included
        ("tag", "edge", "a-edge"),
        ("tag", "core", "a-edge"),
        ("capability", "route", "a-edge"),
        ("tag", "edge", "b-twice"),
        ("capability", "route", "b-twice"),
        ("capability", "search", "b-twice"),
        ("tag", "core", "d-core"),
        ("capability", "search", "d-core"),
    }
    assert not GIN & await target.run(_indexes)
    assert await target.run(diff_on({"registry_services", "registry_service_labels"})) == []
    async with SQLAlchemyServiceStore(target.url, engine_options=options) as store:
        assert await _slugs(store, tag="edge") == ["a-edge", "b-twice"]
        assert await _slugs(store, tag="core") == ["a-edge", "d-core"]
        assert await _slugs(store, capability="search") == ["b-twice", "d-core"]
        assert await _slugs(store, tag="core", capability="route") == ["a-edge"]
        assert await _slugs(store, tag="core", statuses=frozenset({ServiceStatus.DEGRADED})) == ["d-core"]
        assert await _slugs(store, tag="edge", after="a-edge") == ["b-twice"]
        assert await _slugs(store, tag="nothing") == []
        for record in records:
            assert await store.get(record.slug) == record  # the records themselves are untouched

    await downgrade(target.url, PREVIOUS, engine_options=options)
    assert "registry_service_labels" not in await target.run(_tables)
    assert await target.run(_indexes) & GIN == gin  # PostgreSQL only
    await downgrade(target.url, "base", engine_options=options)
