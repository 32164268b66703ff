"""What the SQL store promises beyond the shared contract: engine ownership, metadata isolation, exact time
arithmetic, Python-equal filters and ordering, index-backed sweeps and single-statement contact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from advanced_alchemy.base import metadata_registry, orm_registry
from advanced_alchemy.config import SQLAlchemyAsyncConfig
from sqlalchemy import event, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from litestar_registry.core import states
from litestar_registry.core.events import Topic, service_draft
from litestar_registry.core.models import Contact, HealthReport, ServiceQuery, ServiceRecord, ServiceStatus
from litestar_registry.store import MemoryServiceStore, ServiceStore, create_store
from litestar_registry.store.sqlalchemy import BIND_KEY, SQLAlchemyServiceStore, metadata
from litestar_registry.store.sqlalchemy.models import ServiceModel, ServiceVersionModel
from tests.backends import backend_url, open_store
from tests.records import T0, first_version, make_record

S = ServiceStatus
LIVE = states.LIVE
SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=SQL_BACKENDS)
async def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SQLAlchemyServiceStore]:
    async with open_store(str(request.param), tmp_path) as store:
        assert isinstance(store, SQLAlchemyServiceStore)
        yield store


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return backend_url("sqlite", tmp_path)


async def _create_both(stores: tuple[ServiceStore, ...], *records: ServiceRecord) -> None:
    for store in stores:
        for record in records:
            await store.create(record, first_version(record))


# --- construction and engine ownership ---------------------------------------------------------------------------


def test_takes_exactly_one_of_url_or_config(sqlite_url: str) -> None:
    config = SQLAlchemyAsyncConfig(connection_string=sqlite_url)
    with pytest.raises(ValueError, match="exactly one"):
        SQLAlchemyServiceStore()
    with pytest.raises(ValueError, match="exactly one"):
        SQLAlchemyServiceStore(sqlite_url, config=config)
    with pytest.raises(ValueError, match="engine_options"):
        SQLAlchemyServiceStore(config=config, engine_options={"echo": True})


async def test_the_engine_exists_only_while_open(sqlite_url: str) -> None:
    store = SQLAlchemyServiceStore(sqlite_url, create_schema=True)
    with pytest.raises(RuntimeError, match="not open"):
        _ = store.engine
    async with store:
        engine = store.engine
        await store.open()  # a second open keeps the engine
        assert store.engine is engine
    with pytest.raises(RuntimeError, match="not open"):
        _ = store.engine
    await store.close()  # closing twice is harmless


async def test_an_owned_engine_returns_every_connection_and_is_disposed(sqlite_url: str) -> None:
    store = SQLAlchemyServiceStore(sqlite_url, create_schema=True, engine_options={"pool_size": 3})
    await store.open()
    pool = store.engine.sync_engine.pool
    records = [make_record(f"own{i}") for i in range(6)]
    await asyncio.gather(*(store.create(record, first_version(record)) for record in records))
    await asyncio.gather(*(store.get(record.slug) for record in records))
    assert pool.checkedout() == 0
    assert pool.checkedin() > 0
    engine = store.engine
    await store.close()
    assert engine.sync_engine.pool.checkedin() == 0  # dispose() replaced the pool: nothing left open


async def test_a_borrowed_engine_is_used_and_left_to_its_owner(sqlite_url: str) -> None:
    config = SQLAlchemyAsyncConfig(connection_string=sqlite_url)
    engine = config.get_engine()
    try:
        store = create_store(sqlite_url, create_schema=True, sqlalchemy_config=config)
        assert isinstance(store, SQLAlchemyServiceStore)
        async with store:
            assert store.engine is engine
            record = make_record("borrowed")
            await store.create(record, first_version(record))
        assert engine.sync_engine.pool.checkedin() > 0  # close() did not dispose the host's pool
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM registry_services")) == 1
    finally:
        await engine.dispose()


async def test_an_owned_sqlite_file_writes_ahead_and_a_borrowed_engine_is_left_alone(sqlite_url: str) -> None:
    async with SQLAlchemyServiceStore(sqlite_url, create_schema=True) as store, store.engine.connect() as conn:
        # Commits need no fsync of their own (several ms each in the default rollback-journal mode).
        assert (await conn.scalar(text("PRAGMA journal_mode")), await conn.scalar(text("PRAGMA synchronous"))) == (
            "wal",
            1,  # NORMAL
        )
    config = SQLAlchemyAsyncConfig(connection_string=sqlite_url.replace("registry.db", "host.db"))
    engine = config.get_engine()
    try:
        async with SQLAlchemyServiceStore(config=config, create_schema=True), engine.connect() as conn:
            assert await conn.scalar(text("PRAGMA journal_mode")) == "delete"  # the host's engine, the host's settings
    finally:
        await engine.dispose()


async def test_without_create_schema_open_creates_nothing(sqlite_url: str) -> None:
    async with SQLAlchemyServiceStore(sqlite_url) as store, store.engine.connect() as conn:
        assert await conn.run_sync(lambda sync: inspect(sync).get_table_names()) == []


async def test_a_call_from_another_event_loop_gets_a_connection_of_its_own(
    sql_store: SQLAlchemyServiceStore,
) -> None:
    # A test client runs the app on a portal thread's loop; pooled connections must not cross loops.
    record = make_record("elsewhere")
    await sql_store.create(record, first_version(record))
    pool = sql_store.engine.sync_engine.pool
    pooled = pool.checkedin()

    async def from_another_loop() -> ServiceRecord | None:
        contact = Contact(at=T0 + timedelta(seconds=1), status=S.ACTIVE, from_statuses=LIVE)
        touched = await sql_store.touch("elsewhere", contact)
        assert touched is not None
        assert await sql_store.delete("elsewhere", expected_revision=touched.revision)
        return await sql_store.get("elsewhere")

    assert await asyncio.to_thread(asyncio.run, from_another_loop()) is None
    assert pool.checkedin() == pooled  # the other loop never touched our pool
    assert await sql_store.get("elsewhere") is None


# --- metadata isolation --------------------------------------------------------------------------------------------


def test_tables_live_on_the_registry_bind_key_only() -> None:
    assert metadata is metadata_registry.get(BIND_KEY)
    assert metadata is not orm_registry.metadata
    assert ServiceModel.__table__.metadata is metadata
    assert ServiceVersionModel.__table__.metadata is metadata
    assert {"registry_services", "registry_service_versions"} <= set(metadata.tables)
    assert all(name.startswith("registry_") for name in metadata.tables)
    assert not any(name.startswith("registry_") for name in orm_registry.metadata.tables)
    assert not any(name.startswith("registry_") for name in metadata_registry.get(None).tables)


async def test_the_hosts_create_all_does_not_create_our_tables(sqlite_url: str) -> None:
    engine = create_async_engine(sqlite_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(orm_registry.metadata.create_all)
            names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        assert not any(name.startswith("registry_") for name in names)
    finally:
        await engine.dispose()


# --- exact agreement with the memory store ------------------------------------------------------------------------


async def test_time_arithmetic_is_exact_to_the_microsecond(sql_store: SQLAlchemyServiceStore) -> None:
    # Float epoch seconds get ``at + ttl`` wrong by a microsecond for ~7% of fractional TTLs; integers never do.
    memory = MemoryServiceStore()
    odd = datetime(2031, 7, 9, 3, 4, 5, 987_653, tzinfo=UTC)
    records = [
        make_record(f"t{i}", at=odd + timedelta(microseconds=i * 7_919), ttl=ttl, windows=windows)
        for i, (ttl, windows) in enumerate(((0.1, 3), (1.5, 7), (12.345678, 2), (7.0000005, 5), (0.333333, 4)))
    ]
    far = make_record("far", at=datetime(9000, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), ttl=0.7, windows=9)
    early = make_record("early", at=datetime(1901, 1, 1, 0, 0, 0, 1, tzinfo=UTC), ttl=2.25)
    await _create_both((memory, sql_store), *records, far, early)
    for record in (*records, far, early):
        assert await sql_store.get(record.slug) == await memory.get(record.slug)
        at = record.last_seen_at + timedelta(microseconds=123_457)
        contact = Contact(at=at, status=S.ACTIVE, from_statuses=LIVE, health=HealthReport(status="ok", reported_at=at))
        touched = await sql_store.touch(record.slug, contact)
        assert touched is not None
        assert touched == await memory.touch(record.slug, contact)
        assert await sql_store.get(record.slug) == touched
    now = odd + timedelta(seconds=3, microseconds=1)
    swept = await sql_store.sweep_due(now, states.advance)
    assert swept == await memory.sweep_due(now, states.advance)
    assert swept  # the short TTLs fell due


async def test_text_filter_casefolds_exactly_as_python(sql_store: SQLAlchemyServiceStore) -> None:
    memory = MemoryServiceStore()
    await _create_both(
        (memory, sql_store),
        make_record("strasse", name="Straße", description="Große ΟΔΟΣ"),
        make_record("cafe", name="CAFÉ", description="back\\slash 50%_off"),
        make_record("plain", name="Plain", description=None),
    )
    for needle in ("STRASSE", "straße", "οδος", "ΟΔΟΣ", "café", "É", "\\", "\\s", "%_", "50%", "_", "e", "zzz"):
        expected = await memory.find(ServiceQuery(text=needle))
        assert await sql_store.find(ServiceQuery(text=needle)) == expected, needle


async def test_slugs_come_in_code_point_order(sql_store: SQLAlchemyServiceStore) -> None:
    memory = MemoryServiceStore()
    slugs = ["ab", "a-c", "a_b", "B", "a", "é", "z", "a0", "A-"]
    await _create_both((memory, sql_store), *(make_record(slug) for slug in slugs))
    expected = [record.slug for record in (await memory.find(ServiceQuery(limit=100))).items]
    assert expected == sorted(slugs)
    assert [record.slug for record in (await sql_store.find(ServiceQuery(limit=100))).items] == expected
    page = await sql_store.find(ServiceQuery(limit=3, after="a-c"))
    assert page == await memory.find(ServiceQuery(limit=3, after="a-c"))


async def test_json_membership_matches_whole_elements_only(sql_store: SQLAlchemyServiceStore) -> None:
    memory = MemoryServiceStore()
    await _create_both(
        (memory, sql_store),
        make_record("quotes", tags=('say "hi"', "%", "ü"), capabilities=("a_b", "[x]")),
        make_record("plain", tags=("core",), capabilities=("search",)),
        make_record("none", tags=(), capabilities=()),
    )
    queries = [
        ServiceQuery(tag='say "hi"'),
        ServiceQuery(tag="%"),
        ServiceQuery(tag="ü"),
        ServiceQuery(tag="cor"),
        ServiceQuery(tag="core"),
        ServiceQuery(capability="a_b"),
        ServiceQuery(capability="axb"),
        ServiceQuery(capability="[x]"),
        ServiceQuery(capability="x"),
        ServiceQuery(statuses=frozenset()),
    ]
    for query in queries:
        assert await sql_store.find(query) == await memory.find(query), query


async def test_absent_owner_and_health_are_sql_null(sql_store: SQLAlchemyServiceStore) -> None:
    record = make_record("bare", owner=None, health=None, metadata={}, extensions={})
    await sql_store.create(record, first_version(record))
    async with sql_store.engine.connect() as conn:
        row = (await conn.execute(text("SELECT owner IS NULL, health IS NULL FROM registry_services"))).one()
    assert tuple(row) == (True, True)
    assert await sql_store.get("bare") == msgspec.structs.replace(record, revision=1)


# --- cost of the hot paths ----------------------------------------------------------------------------------------


def _capture(store: SQLAlchemyServiceStore) -> list[tuple[str, Any]]:
    statements: list[tuple[str, Any]] = []

    @event.listens_for(store.engine.sync_engine, "before_cursor_execute")
    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        statements.append((statement, parameters))

    return statements


async def test_a_contact_that_moves_the_status_logs_it_in_one_transaction(sql_store: SQLAlchemyServiceStore) -> None:
    record = make_record("moving")
    await sql_store.create(record, first_version(record))
    statements = _capture(sql_store)
    contact = Contact(at=T0 + timedelta(seconds=5), status=S.DEGRADED, from_statuses=LIVE)
    touched = await sql_store.touch_logged("moving", contact)
    assert touched.topic is Topic.SERVICE_DEGRADED
    kinds = [sql.lstrip().split()[0].upper() for sql, _ in statements]
    # The steady-state UPDATE matches nothing; then the old status under the write lock, the contact, the event.
    lock = ["SELECT"] if sql_store.engine.dialect.name == "postgresql" else ["UPDATE", "SELECT"]
    assert kinds == ["UPDATE", *lock, "UPDATE", "INSERT", "INSERT"]
    del statements[:]
    assert (await sql_store.touch_logged("moving", contact)).topic is None  # degraded again: the steady state
    assert len(statements) == 1


async def test_touch_is_one_statement_outside_any_transaction(sql_store: SQLAlchemyServiceStore) -> None:
    record = make_record("hot")
    await sql_store.create(record, first_version(record))
    autocommit: list[bool] = []

    @event.listens_for(sql_store.engine.sync_engine, "before_cursor_execute")
    def check(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        autocommit.append(conn.dialect.detect_autocommit_setting(conn.connection.dbapi_connection))

    statements = _capture(sql_store)
    contact = Contact(at=T0 + timedelta(seconds=5), status=S.ACTIVE, from_statuses=LIVE)
    touched = await sql_store.touch("hot", contact)
    assert touched is not None
    assert len(statements) == 1
    assert statements[0][0].lstrip().upper().startswith("UPDATE")
    assert autocommit == [True]  # the driver sends no BEGIN/COMMIT around the UPDATE: one round trip
    older = Contact(at=T0 + timedelta(seconds=4), status=S.DEGRADED, from_statuses=LIVE)
    assert await sql_store.touch("hot", older) == touched  # answered from the same single statement
    assert len(statements) == 2


async def test_the_sweep_reads_what_is_due_through_the_index(sql_store: SQLAlchemyServiceStore) -> None:
    for i in range(30):
        record = make_record(f"idx{i:02d}", at=T0 + timedelta(seconds=i))
        await sql_store.create(record, first_version(record))
    statements = _capture(sql_store)
    await sql_store.sweep_due(T0 + timedelta(seconds=35), states.advance, limit=5)
    select_sql, parameters = next((sql, params) for sql, params in statements if "next_check_us <=" in sql)
    async with sql_store.engine.connect() as conn:
        if sql_store.engine.dialect.name == "postgresql":
            assert "FOR UPDATE" not in select_sql  # the read locks nothing: only the one write statement does
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = (await conn.exec_driver_sql(f"EXPLAIN {select_sql}", parameters)).scalars().all()
        else:
            plan = [row[-1] for row in await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {select_sql}", parameters)]
    assert any("ix_registry_services_next_check" in line for line in plan), plan
    assert not any("SORT" in line.upper() or "B-TREE" in line.upper() for line in plan), plan  # index order


async def test_sqlite_stores_sharing_a_file_write_concurrently_and_claim_each_due_record_once(sqlite_url: str) -> None:
    # Two store objects stand for two processes: no shared write queue, only SQLite's lock and the revisions.
    async with (
        SQLAlchemyServiceStore(sqlite_url, create_schema=True) as one,
        SQLAlchemyServiceStore(sqlite_url) as two,
    ):
        stores = (one, two) * 20
        records = [make_record(f"f{i:02d}", at=T0 + timedelta(milliseconds=i)) for i in range(40)]
        await asyncio.gather(*(store.create(r, first_version(r)) for r, store in zip(records, stores, strict=True)))
        contact = Contact(at=T0 + timedelta(seconds=1), status=S.ACTIVE, from_statuses=LIVE)
        touched = await asyncio.gather(
            *(store.touch(r.slug, contact) for r, store in zip(records, stores, strict=True))
        )
        assert [(record.revision, record.contact_revision) if record else None for record in touched] == [(1, 2)] * 40
        now = T0 + timedelta(seconds=100)
        claimed: list[str] = []
        while slugs := [
            before.slug
            for result in await asyncio.gather(*(store.sweep_due(now, states.advance, limit=6) for store in stores[:6]))
            for before, _ in result
        ]:
            claimed += slugs
        assert sorted(claimed) == [record.slug for record in records]


@pytest.mark.postgres
async def test_postgres_sweep_skips_rows_another_sweeper_holds(tmp_path: Path) -> None:
    async with open_store("postgres", tmp_path) as store:
        assert isinstance(store, SQLAlchemyServiceStore)
        for slug in ("held", "free"):
            record = make_record(slug)
            await store.create(record, first_version(record))
        async with store.engine.begin() as other:
            await other.execute(text("SELECT slug FROM registry_services WHERE slug = 'held' FOR UPDATE"))
            changed = await asyncio.wait_for(store.sweep_due(T0 + timedelta(seconds=31), states.advance), 5)
            assert [before.slug for before, _ in changed] == ["free"]
        changed = await store.sweep_due(T0 + timedelta(seconds=31), states.advance)
        assert [before.slug for before, _ in changed] == ["held"]


async def test_clear_for_tests_empties_both_tables(sql_store: SQLAlchemyServiceStore) -> None:
    record = make_record("wiped")
    await sql_store.create(record, first_version(record))
    await sql_store._clear_for_tests()
    assert await sql_store.get("wiped") is None
    assert await sql_store.versions("wiped") == []
    async with sql_store.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM registry_service_versions")) == 0


async def test_a_sweep_is_one_read_and_one_write_of_the_status_columns(sql_store: SQLAlchemyServiceStore) -> None:
    for i in range(30):
        record = make_record(f"due{i:02d}", at=T0 + timedelta(seconds=i))
        await sql_store.create(record, first_version(record))
    autocommit: list[bool] = []

    @event.listens_for(sql_store.engine.sync_engine, "before_cursor_execute")
    def check(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        autocommit.append(conn.dialect.detect_autocommit_setting(conn.connection.dbapi_connection))

    statements = _capture(sql_store)
    changed = await sql_store.sweep_due(T0 + timedelta(seconds=45), states.advance, limit=10)
    assert len(changed) == 10
    kinds = [sql.lstrip().split()[0].upper() for sql, _ in statements]
    # The due rows, then one UPDATE for the whole batch; its degradations go to the change log in the same
    # transaction: the counter (an upsert), then one INSERT of the batch's events. On SQLite a write that changes
    # nothing opens that transaction first: Python's sqlite3 would run the WITH ... UPDATE outside it.
    postgres = sql_store.engine.dialect.name == "postgresql"
    if not postgres:
        assert (kinds.pop(1), autocommit.pop(1)) == ("UPDATE", False)  # in the transaction, as all that follows
        assert "registry_event_counter" in statements.pop(1)[0]
    assert kinds == ["SELECT", "WITH", "INSERT", "INSERT"]
    assert autocommit == [True, False, False, False]
    assert "registry_event_counter" in statements[2][0]
    assert "registry_events" in statements[3][0]
    write = statements[1][0]
    assert "UPDATE registry_services SET" in write
    assigned = write.split(" SET ", 1)[1].split(" FROM ", 1)[0]
    assert [part.split("=")[0].strip() for part in assigned.split(", ")] == [
        "status",
        "failure_count",
        "next_check_us",
        "contact_revision",
    ]
    if sql_store.engine.dialect.name == "postgresql":
        assert "FOR UPDATE OF registry_services SKIP LOCKED" in write
    # Another missed window of a degraded service announces nothing: no transaction, row locks for one statement.
    await sql_store.sweep_due(T0 + timedelta(seconds=59), states.advance)  # every one degraded now
    del statements[:], autocommit[:]
    assert len(await sql_store.sweep_due(T0 + timedelta(seconds=61), states.advance, limit=2)) == 2
    assert [sql.lstrip().split()[0].upper() for sql, _ in statements] == ["SELECT", "WITH"]
    assert autocommit == [True, True]


@pytest.mark.postgres
async def test_a_ping_to_a_due_service_never_waits_behind_a_sweep(tmp_path: Path) -> None:
    """The contact holds the row: the sweep skips it rather than waiting, and the contact wins (not overwritten)."""
    async with open_store("postgres", tmp_path) as store:
        assert isinstance(store, SQLAlchemyServiceStore)
        for i in range(50):
            record = make_record(f"p{i:02d}")
            await store.create(record, first_version(record))
        async with store.engine.begin() as ping:  # a contact in flight on p07, holding its row lock
            await ping.execute(text("UPDATE registry_services SET failure_count = 0 WHERE slug = 'p07'"))
            changed = await asyncio.wait_for(store.sweep_due(T0 + timedelta(seconds=31), states.advance), 5)
            assert sorted(before.slug for before, _ in changed) == [f"p{i:02d}" for i in range(50) if i != 7]
        [(before, after)] = await store.sweep_due(T0 + timedelta(seconds=31), states.advance)
        assert (before.slug, after.status) == ("p07", S.DEGRADED)


# --- filters through indexes: tests/test_sqlalchemy_filters.py ----------------------------------------------------


# --- pool size --------------------------------------------------------------------------------------------------------


async def test_the_pool_is_sized_from_the_setting_or_the_url(sqlite_url: str, tmp_path: Path) -> None:
    async with create_store(sqlite_url, create_schema=True, pool_size=3) as store:
        pool = store.engine.sync_engine.pool  # type: ignore[attr-defined]
        assert (pool.size(), pool._max_overflow) == (3, 0)
    async with create_store(f"{sqlite_url}?pool_size=4") as store:
        assert store.engine.sync_engine.pool.size() == 4  # type: ignore[attr-defined]
        assert "pool_size" not in str(store.engine.url)  # never handed to the driver
    async with SQLAlchemyServiceStore(sqlite_url, engine_options={"pool_size": 2}, pool_size=9) as store:
        assert store.engine.sync_engine.pool.size() == 2  # explicit engine options win
    with pytest.raises(ValueError, match="positive integer"):
        create_store(f"{sqlite_url}?pool_size=none")


@pytest.mark.postgres
async def test_postgres_hands_event_ids_out_in_commit_order(tmp_path: Path) -> None:
    """A write that appends while another's transaction holds the counter waits, and takes the next id after it.

    With a sequence, the second write could take id 2 and commit first: a reader following the log would then pass
    id 1 while it is still uncommitted, and never see it.
    """
    async with open_store("postgres", tmp_path) as store:
        assert isinstance(store, SQLAlchemyServiceStore)
        first, second = make_record("first"), make_record("second")
        async with store.engine.begin() as slow:  # a write in flight: its event appended, not committed yet
            await store._append(slow, [service_draft(Topic.SERVICE_REGISTERED, first, T0)])
            racing = asyncio.create_task(
                store.create(
                    second, first_version(second), events=[service_draft(Topic.SERVICE_REGISTERED, second, T0)]
                )
            )
            await asyncio.sleep(0.3)
            assert not racing.done()  # it waits on the counter's row lock ...
            assert (await store.read_events()).items == []  # ... and a reader sees neither event yet
        await asyncio.wait_for(racing, 5)
        page = await store.read_events()
        assert [(e.id, e.subject) for e in page.items] == [(1, "first"), (2, "second")]
        assert page.last_id == 2


@pytest.mark.postgres
async def test_postgres_pools_twenty_connections_unless_told(tmp_path: Path) -> None:
    url = backend_url("postgres", tmp_path)
    async with create_store(url) as store:
        pool = store.engine.sync_engine.pool  # type: ignore[attr-defined]
        assert (pool.size(), pool._max_overflow) == (20, 0)
    async with create_store(url, pool_size=64) as store:
        assert store.engine.sync_engine.pool.size() == 64  # type: ignore[attr-defined]


async def test_a_sized_pool_is_no_migration_option(tmp_path: Path) -> None:
    """Migrations run on a pool-less engine (NullPool), which refuses pool sizes."""
    from litestar_registry.store.sqlalchemy.migrate import current

    url = f"{backend_url('sqlite', tmp_path)}?pool_size=3"
    store = create_store(url, create_schema=True)
    assert isinstance(store, SQLAlchemyServiceStore)
    async with store:
        target, options = store.migration_target()
        assert "pool_size" not in target
        assert not any(key.startswith(("pool", "max_overflow")) for key in options)
        assert await current(target, engine_options=options) is not None
