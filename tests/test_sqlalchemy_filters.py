"""List filters on the SQL store: their answers equal Python's filtering, their label rows follow every write, and
their plans walk an index in slug order and stop at the page (EXPLAIN on PostgreSQL, EXPLAIN QUERY PLAN on SQLite),
so that a page costs what it returns, bounded by the filters' selectivity, not the size of the registry."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import event, select

from litestar_registry.core.models import Rewrite, ServiceQuery, ServiceRecord, ServiceStatus
from litestar_registry.store.filters import matches
from litestar_registry.store.sqlalchemy import SQLAlchemyServiceStore
from litestar_registry.store.sqlalchemy.store import _history_row, _labels, _row, _services, _versions, label_rows
from tests.backends import open_store
from tests.records import first_version, make_record

S = ServiceStatus
SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
COUNT = 10_000
PAGE = 20
DEFAULT = frozenset({S.ACTIVE, S.DEGRADED, S.PENDING, S.REJECTED})
"""The list route's statuses when none is asked for."""


@pytest.fixture(params=SQL_BACKENDS)
async def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SQLAlchemyServiceStore]:
    async with open_store(str(request.param), tmp_path) as store:
        assert isinstance(store, SQLAlchemyServiceStore)
        yield store


def _seeded(i: int) -> ServiceRecord:
    """Service ``i`` of the plan tests: tag ``group-{i % 10}``, capability ``cap-{i % 10}``, one in 500 pending."""
    return make_record(
        f"svc-{i:05d}",
        status=S.PENDING if i % 500 == 7 else S.ACTIVE,
        tags=("all", f"group-{i % 10}"),
        capabilities=(f"cap-{i % 10}",),
    )


async def _seed(store: SQLAlchemyServiceStore) -> None:
    """``COUNT`` services in bulk (as ``bench_register.fill`` does), then statistics as after an operator's ANALYZE."""
    records = [_seeded(i) for i in range(COUNT)]
    async with store.engine.begin() as conn:
        for start in range(0, COUNT, 2_000):
            chunk = records[start : start + 2_000]
            await conn.execute(_services.insert(), [{"slug": r.slug, **_row(r, 1)} for r in chunk])
            await conn.execute(_versions.insert(), [_history_row(first_version(r)) for r in chunk])
            await conn.execute(_labels.insert(), [row for r in chunk for row in label_rows(r)])
    if store.engine.dialect.name == "postgresql":
        async with store.engine.connect() as conn:
            await conn.exec_driver_sql("ANALYZE registry_services, registry_service_labels")


async def _statement(store: SQLAlchemyServiceStore, query: ServiceQuery) -> tuple[str, Any]:
    """The SELECT ``find`` sends for ``query``, with its parameters."""
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        statements.append((statement, parameters))

    event.listen(store.engine.sync_engine, "before_cursor_execute", capture)
    try:
        await store.find(query)
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", capture)
    [found] = statements
    return found


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


async def _postgres_plan(store: SQLAlchemyServiceStore, query: ServiceQuery) -> list[dict[str, Any]]:
    sql, parameters = await _statement(store, query)
    async with store.engine.connect() as conn:
        explained = await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", parameters)
        document = explained.scalar_one()
    plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
    return list(_nodes(plan))


async def _sqlite_plan(store: SQLAlchemyServiceStore, query: ServiceQuery) -> list[str]:
    sql, parameters = await _statement(store, query)
    async with store.engine.connect() as conn:
        return [row[-1] for row in await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters)]


PENDING = ServiceQuery(statuses=frozenset({S.PENDING}), limit=PAGE)
TAG = ServiceQuery(statuses=DEFAULT, tag="group-3", limit=PAGE)
CAPABILITY = ServiceQuery(statuses=DEFAULT, capability="cap-3", limit=PAGE)
NO_MATCH = ServiceQuery(statuses=DEFAULT, tag="nomatch", limit=PAGE)
STATUS_AND_TAG = ServiceQuery(statuses=frozenset({S.ACTIVE}), tag="group-3", limit=PAGE)
TAG_AND_CAPABILITY = ServiceQuery(statuses=DEFAULT, tag="group-3", capability="cap-3", limit=PAGE)
TAG_AFTER = ServiceQuery(statuses=DEFAULT, tag="group-3", after="svc-05000", limit=PAGE)
DISJOINT = ServiceQuery(statuses=DEFAULT, tag="group-3", capability="cap-4", limit=PAGE)
LABELLED = (TAG, CAPABILITY, NO_MATCH, STATUS_AND_TAG, TAG_AND_CAPABILITY, TAG_AFTER, DISJOINT)


async def test_filtered_pages_equal_python_filtering(sql_store: SQLAlchemyServiceStore) -> None:
    await _seed(sql_store)
    records = [_seeded(i) for i in range(COUNT)]
    for query in (PENDING, *LABELLED, ServiceQuery(statuses=DEFAULT, tag="all", after="svc-09990", limit=PAGE)):
        expected = [r.slug for r in records if matches(r, query) and (query.after is None or r.slug > query.after)]
        page = await sql_store.find(query)
        assert [r.slug for r in page.items] == expected[:PAGE], query
        assert page.next_after == (expected[PAGE - 1] if len(expected) > PAGE else None), query


@pytest.mark.postgres
async def test_postgres_filters_walk_an_index_in_slug_order_and_stop_at_the_page(tmp_path: Path) -> None:
    async with open_store("postgres", tmp_path) as store:
        assert isinstance(store, SQLAlchemyServiceStore)
        await _seed(store)
        for query in (PENDING, *LABELLED):
            nodes = await _postgres_plan(store, query)
            kinds = {node["Node Type"] for node in nodes}
            # No scan of the table, no sort of every match: the order comes from the index walked.
            assert not kinds & {"Seq Scan", "Sort", "Incremental Sort", "Bitmap Heap Scan"}, (query, nodes)
            scans = {node.get("Alias"): node for node in nodes if "Index Name" in node}
            driving = scans["l0"] if query in LABELLED else scans["registry_services"]
            expected_index = "pk_registry_service_labels" if query in LABELLED else "ix_registry_services_status"
            assert driving["Index Name"] == expected_index, (query, nodes)
            read = {alias: node["Actual Rows"] * node["Actual Loops"] for alias, node in scans.items()}
            if query is NO_MATCH:
                assert read["l0"] == 0  # one probe of the label's key, and nothing else read
                assert read["registry_services"] == 0, nodes
            elif query is DISJOINT:  # nothing matches both: the tag's rows walked, each with one probe, no more
                assert scans["l1"]["Actual Loops"] == COUNT // 10, nodes  # a probe for each row of the tag
                assert read == {"l0": 0, "l1": 0, "registry_services": 0}, read  # and each probe fails
            else:  # the page, and the rows between its matches (a tenth of the rows match): never the registry
                assert read[driving.get("Alias")] <= PAGE + 1, (query, read)
                assert max(read.values()) <= 10 * (PAGE + 1) + 10, (query, read)


async def test_sqlite_filters_walk_an_index_in_slug_order(tmp_path: Path) -> None:
    async with open_store("sqlite", tmp_path) as store:
        assert isinstance(store, SQLAlchemyServiceStore)
        await _seed(store)
        plan = await _sqlite_plan(store, PENDING)
        assert plan == ["SEARCH registry_services USING INDEX ix_registry_services_status (status=?)"], plan
        for query in LABELLED:
            plan = await _sqlite_plan(store, query)
            bound = " AND slug>?" if query.after is not None else ""
            # The first label's key drives, in slug order; the service row is a probe by slug, and so is a second
            # label (a correlated subquery, one probe of its key per row walked).
            assert plan[0] == f"SEARCH l0 USING PRIMARY KEY (kind=? AND value=?{bound})", (query, plan)
            probes = [line for line in plan[1:] if not line.startswith("CORRELATED SCALAR SUBQUERY")]
            two = query.tag is not None and query.capability is not None
            assert probes == [
                *(["SEARCH l1 USING PRIMARY KEY (kind=? AND value=? AND slug=?)"] if two else []),
                "SEARCH registry_services USING INDEX sqlite_autoindex_registry_services_1 (slug=?)",
            ], (query, plan)
            assert not any("TEMP B-TREE" in line or line.startswith("SCAN") for line in plan), (query, plan)


async def _labels_of(store: SQLAlchemyServiceStore, slug: str) -> set[tuple[str, str]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(_labels.c.kind, _labels.c.value).where(_labels.c.slug == slug))
        return {(kind, value) for kind, value in rows}


async def test_label_rows_follow_every_write(sql_store: SQLAlchemyServiceStore) -> None:
    record = make_record("labelled", tags=("edge", "edge", "core"), capabilities=("search",))
    created = await sql_store.create(record, first_version(record))
    assert created.tags == ("edge", "edge", "core")  # the record keeps its arrays as given
    assert await _labels_of(sql_store, "labelled") == {("tag", "edge"), ("tag", "core"), ("capability", "search")}

    changed = msgspec.structs.replace(record, tags=("core", "new"), capabilities=())
    stored = await sql_store.replace(changed, expected_revision=1, rewrite=Rewrite())
    assert await _labels_of(sql_store, "labelled") == {("tag", "core"), ("tag", "new")}
    assert [r.slug for r in (await sql_store.find(ServiceQuery(tag="new"))).items] == ["labelled"]
    assert (await sql_store.find(ServiceQuery(tag="edge"))).items == []
    assert (await sql_store.find(ServiceQuery(capability="search"))).items == []

    await sql_store.replace(stored, expected_revision=2, rewrite=Rewrite(status=S.DEGRADED))  # labels unchanged
    assert await _labels_of(sql_store, "labelled") == {("tag", "core"), ("tag", "new")}

    assert await sql_store.delete("labelled")
    assert await _labels_of(sql_store, "labelled") == set()
    assert (await sql_store.find(ServiceQuery(tag="core"))).items == []
    again = make_record("labelled", tags=("core",))
    await sql_store.create(again, first_version(again))  # the slug comes back without leftovers
    assert await _labels_of(sql_store, "labelled") == {("tag", "core"), ("capability", "search")}
