"""What the contract suite cannot see on Redis/Valkey: native expiry, vanished keys, round trips, URLs and loops."""

from __future__ import annotations

import asyncio
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import uuid4

import msgspec
import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection

from litestar_registry.core import states
from litestar_registry.core.errors import ServiceNotFound, StaleWrite
from litestar_registry.core.events import Topic, service_draft
from litestar_registry.core.models import Contact, HealthReport, Rewrite, ServiceQuery, ServiceStatus, VersionEntry
from litestar_registry.store import MemoryServiceStore, ServiceStore, StoreConfigurationError, create_store
from litestar_registry.store.epoch import to_micros
from litestar_registry.store.redis import RedisServiceStore, _Direct, _redis_url
from tests.backends import REDIS_URL, open_store, require_server
from tests.records import T0, first_version, make_record

pytestmark = pytest.mark.redis

S = ServiceStatus
LIVE = states.LIVE
CONTACT_FROM = states.sources(states.Event.CONTACT_HEALTHY)
DAY_MS = 86_400_000


@pytest.fixture
async def rs(tmp_path: Path) -> AsyncIterator[RedisServiceStore]:
    async with open_store("redis", tmp_path) as store:
        assert isinstance(store, RedisServiceStore)
        yield store


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every write to a Redis socket (one per round trip, a pipeline included), as the command names sent."""
    sent: list[bytes] = []
    original = AbstractConnection.send_packed_command

    async def counting(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        packed = b"".join(command) if isinstance(command, list | tuple) else bytes(command)
        sent.append(packed.split(b"\r\n")[2].upper())  # *<argc>, $<len>, then the command name
        await original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    direct = _Direct._send

    async def counting_direct(conn: Any, packed: bytes) -> None:  # the store's own connections write here
        sent.append(packed.split(b"\r\n")[2].upper())
        await direct(conn, packed)

    monkeypatch.setattr(_Direct, "_send", staticmethod(counting_direct))
    return sent


async def _create(store: ServiceStore, slug: str, **fields: Any) -> None:
    record = make_record(slug, **fields)
    await store.create(record, first_version(record))


# --- connections ----------------------------------------------------------------------------------------------------


async def test_a_burst_beyond_the_pool_waits_for_connections_instead_of_failing(tmp_path: Path) -> None:
    """200 writes at once through a pool of 5; redis-py's default pool fails the excess: 'Too many connections'."""
    require_server("redis")
    store = create_store(f"{REDIS_URL}?max_connections=5", create_schema=True)
    assert isinstance(store, RedisServiceStore)
    async with store:
        await store._clear_for_tests()
        try:
            records = [make_record(f"burst-{i:03d}") for i in range(200)]
            await asyncio.gather(*(store.create(record, first_version(record)) for record in records))
            found = await asyncio.gather(*(store.get(record.slug) for record in records))
            assert all(record is not None for record in found)
            pool = store.client.connection_pool
            assert isinstance(pool, aioredis.BlockingConnectionPool)
            assert pool.max_connections == 5
        finally:
            await store._clear_for_tests()


# --- native expiry ------------------------------------------------------------------------------------------------


async def test_live_records_get_a_native_expiry_of_their_expiry_window_plus_a_day(rs: RedisServiceStore) -> None:
    await _create(rs, "live")  # ttl 30 s, 3 windows
    expected = 90_000 + DAY_MS
    for key in ("{registry}:svc:live", "{registry}:hist:live"):
        assert expected - 5_000 < await rs.client.pttl(key) <= expected

    await rs.client.pexpire("{registry}:svc:live", 1_000)  # a touch must extend it again
    await rs.touch("live", Contact(at=T0 + timedelta(seconds=1), status=S.ACTIVE, from_statuses=CONTACT_FROM))
    assert expected - 5_000 < await rs.client.pttl("{registry}:svc:live") <= expected


async def test_records_that_are_not_live_are_kept_forever(rs: RedisServiceStore) -> None:
    await _create(rs, "waiting", status=S.PENDING, next_check_at=None)
    assert await rs.client.pttl("{registry}:svc:waiting") == -1
    await _create(rs, "silent")
    [(_, expired)] = await rs.sweep_due(T0 + timedelta(seconds=200), states.advance)
    assert expired.status is S.EXPIRED
    # The sweeper persisted the expiry: the record stays visible as expired, as on every backend.
    assert await rs.client.pttl("{registry}:svc:silent") == -1
    assert await rs.client.pttl("{registry}:hist:silent") == -1


async def test_native_expiry_can_be_disabled(tmp_path: Path) -> None:
    require_server("redis")
    async with RedisServiceStore(REDIS_URL, namespace="registry-noexp", orphan_retention_seconds=None) as store:
        await store._clear_for_tests()
        await _create(store, "live")
        await store.touch("live", Contact(at=T0, status=S.ACTIVE, from_statuses=CONTACT_FROM))
        assert await store.client.pttl("{registry-noexp}:svc:live") == -1
        await store._clear_for_tests()


async def test_a_natively_expired_service_is_skipped_and_its_index_entries_dropped(tmp_path: Path) -> None:
    require_server("redis")
    async with RedisServiceStore(REDIS_URL, namespace="registry-short", orphan_retention_seconds=0.05) as store:
        await store._clear_for_tests()
        await _create(store, "brief", ttl=0.02, windows=1)  # key lives 20 ms + 50 ms
        await _create(store, "kept", status=S.PENDING, next_check_at=None)
        await asyncio.sleep(0.3)
        assert await store.get("brief") is None
        assert [r.slug for r in (await store.find(ServiceQuery())).items] == ["kept"]
        assert await store.client.zrange("{registry-short}:slugs", 0, -1) == [b"kept"]
        assert await store.client.zcard("{registry-short}:due") == 0
        await store._clear_for_tests()


# --- vanished keys ------------------------------------------------------------------------------------------------


async def test_find_skips_and_cleans_a_slug_whose_hash_vanished(rs: RedisServiceStore) -> None:
    for slug in ("a", "b", "c"):
        await _create(rs, slug)
    await rs.client.delete("{registry}:svc:b")
    page = await rs.find(ServiceQuery(limit=2))
    assert ([r.slug for r in page.items], page.next_after) == (["a", "c"], None)
    assert await rs.client.zrange("{registry}:slugs", 0, -1) == [b"a", b"c"]
    assert await rs.client.zrange("{registry}:due", 0, -1) == [b"a", b"c"]
    assert await rs.client.exists("{registry}:hist:b") == 0
    assert await rs.versions("b") == []


async def test_sweep_skips_and_cleans_a_due_slug_whose_hash_vanished(rs: RedisServiceStore) -> None:
    await _create(rs, "ghost")
    await _create(rs, "real", at=T0 + timedelta(seconds=1))
    await rs.client.delete("{registry}:svc:ghost")
    changed = await rs.sweep_due(T0 + timedelta(seconds=45), states.advance, limit=1)
    assert [(before.slug, after.status) for before, after in changed] == [("real", S.DEGRADED)]
    assert await rs.client.zscore("{registry}:due", "ghost") is None
    assert await rs.client.zscore("{registry}:slugs", "ghost") is None


async def test_writes_to_a_vanished_slug_never_resurrect_it(rs: RedisServiceStore) -> None:
    record = make_record("gone")
    await rs.create(record, first_version(record))
    await rs.client.delete("{registry}:svc:gone")
    contact = Contact(at=T0 + timedelta(seconds=1), status=S.ACTIVE, from_statuses=CONTACT_FROM)
    assert await rs.touch("gone", contact) is None
    with pytest.raises(ServiceNotFound):
        await rs.replace(record, expected_revision=1)
    assert await rs.client.exists("{registry}:svc:gone", "{registry}:hist:gone") == 0
    assert await rs.client.zscore("{registry}:slugs", "gone") is None
    await rs.create(record, first_version(record))  # the slug is free again, with a fresh history
    assert await rs.versions("gone") == [first_version(record)]


# --- concurrency --------------------------------------------------------------------------------------------------


async def test_concurrent_reregistrations_leave_one_consistent_record(rs: RedisServiceStore) -> None:
    """Workers on separate connections re-register one slug with read-modify-replace; no write is lost or torn."""
    record = make_record("hot")
    await rs.create(record, first_version(record))
    others = [RedisServiceStore(REDIS_URL) for _ in range(3)]
    for other in others:
        await other.open()

    async def reregister(store: RedisServiceStore, worker: int) -> None:
        for n in range(10):
            while True:
                current = await store.get("hot")
                assert current is not None
                version = f"{worker}.{n}"
                entry = VersionEntry(
                    slug="hot", version=version, previous_version=current.version, recorded_at=current.updated_at
                )
                update = msgspec.structs.replace(current, version=version, name=f"worker {worker}", metadata={"n": n})
                try:
                    await store.replace(update, expected_revision=current.revision, history=entry)
                    break
                except StaleWrite:
                    continue

    try:
        await asyncio.gather(*(reregister(store, i) for i, store in enumerate([rs, *others])))
    finally:
        for other in others:
            await other.close()
    final = await rs.get("hot")
    history = await rs.versions("hot")
    assert final is not None
    assert final.revision == 1 + 40 == len(history)
    assert history[-1].version == final.version
    assert final.name == f"worker {final.version.split('.')[0]}"
    assert final.metadata == {"n": int(final.version.split(".")[1])}
    # Each entry names the version it replaced: one unbroken chain, no two writers built on the same revision.
    assert [entry.previous_version for entry in history[1:]] == [entry.version for entry in history[:-1]]


async def test_touch_computes_deadlines_exactly_like_the_reference_store(rs: RedisServiceStore) -> None:
    memory = MemoryServiceStore()
    at = T0 + timedelta(microseconds=123_457)
    record = make_record("exact", at=at, ttl=12.345678, windows=7, account="team")
    for store in (memory, rs):
        await store.create(record, first_version(record))
    contact = Contact(
        at=at + timedelta(seconds=5, microseconds=999_999),
        status=S.DEGRADED,
        from_statuses=CONTACT_FROM,
        account="team",
        health=HealthReport(status="degraded", reported_at=at, metrics={"p99": 0.25}),
    )
    expected = await memory.touch("exact", contact)
    assert expected is not None
    assert await rs.touch("exact", contact) == expected
    assert await rs.get("exact") == expected
    now = expected.deadline_at + timedelta(microseconds=1)
    assert await rs.sweep_due(now, states.advance) == await memory.sweep_due(now, states.advance)


# --- round trips --------------------------------------------------------------------------------------------------


async def test_touch_is_one_round_trip(rs: RedisServiceStore, wire: list[bytes]) -> None:
    await _create(rs, "pinged")
    contact = Contact(at=T0 + timedelta(seconds=1), status=S.ACTIVE, from_statuses=CONTACT_FROM)
    wire.clear()
    assert await rs.touch("pinged", contact) is not None
    assert wire == [b"EVALSHA"]
    wire.clear()
    assert await rs.touch("nobody", contact) is None
    assert wire == [b"EVALSHA"]


async def test_a_data_write_and_a_history_page_are_one_round_trip_each(
    rs: RedisServiceStore, wire: list[bytes]
) -> None:
    record = make_record("once")
    await rs.create(record, first_version(record))
    entry = VersionEntry(slug="once", version="2.0.0", previous_version="1.0.0", recorded_at=T0)
    wire.clear()
    written = await rs.replace(
        msgspec.structs.replace(record, version="2.0.0"),
        expected_revision=1,
        history=entry,
        history_limit=1,
        rewrite=Rewrite(from_statuses=LIVE, restart_at=T0 + timedelta(seconds=3)),
    )
    assert wire == [b"EVALSHA"]
    assert (written.version, written.last_seen_at) == ("2.0.0", T0 + timedelta(seconds=3))
    wire.clear()
    page = await rs.version_page("once", limit=1)
    assert wire == [b"EVALSHA"]
    assert (page.items, page.next_after) == ([entry], None)


async def test_the_change_log_is_a_stream_under_the_hash_tag_read_and_appended_in_one_round_trip(
    rs: RedisServiceStore, wire: list[bytes]
) -> None:
    record = make_record("logged")
    draft = service_draft(Topic.SERVICE_REGISTERED, record, T0)
    wire.clear()
    await rs.create(record, first_version(record), events=[draft])
    assert wire == [b"EVALSHA"]  # the record and its event, one script
    wire.clear()
    degraded = Contact(at=T0 + timedelta(seconds=1), status=S.DEGRADED, from_statuses=CONTACT_FROM)
    assert (await rs.touch_logged("logged", degraded)).topic is Topic.SERVICE_DEGRADED
    assert wire == [b"EVALSHA"]  # a transition is still one round trip: the script decides and logs it
    wire.clear()
    page = await rs.read_events(limit=10)
    assert wire == [b"EVALSHA"]
    assert [(e.id, e.topic) for e in page.items] == [(1, Topic.SERVICE_REGISTERED), (2, Topic.SERVICE_DEGRADED)]
    client = rs.client
    assert await client.type("{registry}:events") == b"stream"
    assert [entry_id for entry_id, _ in await client.xrange("{registry}:events")] == [b"1-0", b"2-0"]
    assert await client.get("{registry}:event_id") == b"2"
    assert await rs.trim_events(keep_after=1) == 1
    assert await client.xlen("{registry}:events") == 1


async def test_records_written_before_the_contact_revision_existed_keep_working(rs: RedisServiceStore) -> None:
    """A hash without ``crev`` (and a history without ``hdrop``), as an earlier version of the store left them."""
    record = make_record("old", ttl=10)
    await rs.create(record, first_version(record))
    await rs.client.hdel("{registry}:svc:old", "crev")
    assert (await rs.get("old")).contact_revision == 0
    touched = await rs.touch("old", Contact(at=T0 + timedelta(seconds=1), status=S.ACTIVE, from_statuses=LIVE))
    assert touched.contact_revision == 1
    await rs.client.hdel("{registry}:svc:old", "crev")
    [(before, after)] = await rs.sweep_due(T0 + timedelta(seconds=12), states.advance)
    assert (before.contact_revision, after.contact_revision, after.status) == (0, 1, S.DEGRADED)
    entry = VersionEntry(slug="old", version="2.0.0", previous_version="1.0.0", recorded_at=T0)
    await rs.replace(msgspec.structs.replace(record, version="2.0.0"), expected_revision=1, history=entry)
    page = await rs.version_page("old", limit=1)
    assert page.items == [first_version(record)]
    assert (await rs.version_page("old", after=page.next_after)).items == [entry]


async def test_a_forgotten_script_is_loaded_again(rs: RedisServiceStore, wire: list[bytes]) -> None:
    await _create(rs, "a")
    await rs.client.script_flush()  # as after a server restart or failover
    wire.clear()
    contact = Contact(at=T0 + timedelta(seconds=1), status=S.ACTIVE, from_statuses=CONTACT_FROM)
    assert await rs.touch("a", contact) is not None
    assert wire == [b"EVALSHA", b"SCRIPT", b"EVALSHA"]
    await rs.client.script_flush()
    changed = await rs.sweep_due(T0 + timedelta(seconds=40), states.advance)  # pipelined scripts reload too
    assert [after.status for _, after in changed] == [S.DEGRADED]


async def test_a_sweep_costs_what_is_due_not_how_many_services_exist(rs: RedisServiceStore, wire: list[bytes]) -> None:
    for i in range(300):
        await _create(rs, f"quiet-{i:03d}", at=T0 + timedelta(hours=1))
    for i in range(3):
        await _create(rs, f"due-{i}")
    wire.clear()
    changed = await rs.sweep_due(T0 + timedelta(seconds=31), states.advance, limit=10)
    assert sorted(before.slug for before, _ in changed) == ["due-0", "due-1", "due-2"]
    # One range read of the due set, one pipelined read of those records, one pipelined write.
    assert wire == [b"ZRANGEBYSCORE", b"EVALSHA", b"EVALSHA"]


async def test_a_due_record_that_advance_leaves_alone_leaves_the_due_set(rs: RedisServiceStore) -> None:
    """As on the memory store; otherwise such records would fill every batch and starve the ones behind them."""
    for i in range(3):
        await _create(rs, f"held-{i}", status=S.PENDING)  # pending, yet with a next check: advance does nothing
    await _create(rs, "late", at=T0 + timedelta(seconds=5))
    changed = await rs.sweep_due(T0 + timedelta(seconds=40), states.advance, limit=2)
    assert [before.slug for before, _ in changed] == ["late"]
    assert await rs.client.zrange("{registry}:due", 0, -1) == [b"late"]
    assert (await rs.get("held-0")).revision == 1


# --- URLs, clients, namespaces, loops -----------------------------------------------------------------------------


async def test_a_valkey_url_reaches_the_same_server(rs: RedisServiceStore) -> None:
    await _create(rs, "shared")
    valkey = create_store(REDIS_URL.replace("redis://", "valkey://", 1))
    assert isinstance(valkey, RedisServiceStore)
    async with valkey:
        got = await valkey.get("shared")
        assert got is not None
        assert got == await rs.get("shared")


def test_without_redis_installed_a_redis_url_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # what ``import redis`` meets when the package is missing
    monkeypatch.delitem(sys.modules, "litestar_registry.store.redis")
    with pytest.raises(StoreConfigurationError, match=r"pip install 'litestar-registry\[redis\]'"):
        create_store("valkey://127.0.0.1:6379/0")


async def test_namespaces_do_not_see_or_clear_each_other(rs: RedisServiceStore) -> None:
    await _create(rs, "mine")
    async with RedisServiceStore(REDIS_URL, namespace="registry-other") as other:
        await other._clear_for_tests()
        assert await other.get("mine") is None
        await _create(other, "theirs")
        await other._clear_for_tests()
        assert await other.client.exists("{registry-other}:svc:theirs") == 0
    assert await rs.get("mine") is not None


async def test_a_given_client_is_used_and_left_open() -> None:
    require_server("redis")
    client = aioredis.Redis.from_url(_redis_url(REDIS_URL))  # redis-py itself knows no valkey:// scheme
    try:
        async with RedisServiceStore("redis://unused", namespace="registry-given", client=client) as store:
            await _create(store, "x")
            assert await client.exists("{registry-given}:svc:x") == 1
            await store._clear_for_tests()
        assert await client.ping()
    finally:
        await client.aclose()


async def test_a_decoding_client_is_refused() -> None:
    client = aioredis.Redis.from_url(_redis_url(REDIS_URL), decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses"):
            RedisServiceStore(REDIS_URL, client=client)
    finally:
        await client.aclose()


async def test_an_unopened_store_says_so() -> None:
    with pytest.raises(RuntimeError, match="not open"):
        await RedisServiceStore(REDIS_URL).get("x")


async def test_a_call_from_another_event_loop_uses_its_own_connection(rs: RedisServiceStore) -> None:
    """As under a sync test client's portal: the store was opened on this loop, a thread runs another one."""
    await _create(rs, "across")

    def elsewhere() -> tuple[str | None, int]:
        async def calls() -> tuple[str | None, int]:
            got = await rs.get("across")
            touched = await rs.touch(
                "across", Contact(at=T0 + timedelta(seconds=1), status=S.ACTIVE, from_statuses=CONTACT_FROM)
            )
            return (got.slug if got else None), (touched.contact_revision if touched else 0)

        return asyncio.run(calls())

    assert await asyncio.to_thread(elsewhere) == ("across", 2)
    assert (await rs.get("across")).contact_revision == 2  # and the store's own pool still works on its loop


# --- list pages through the filter indexes --------------------------------------------------------------------------


def _resp(*args: str) -> bytes:
    """One command in the Redis protocol."""
    return f"*{len(args)}\r\n".encode() + b"".join(f"${len(arg.encode())}\r\n{arg}\r\n".encode() for arg in args)


@asynccontextmanager
async def _bare_connection(url: str) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A connection to the test server beside redis-py, so that ``wire`` does not count what goes through it."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 6379)
    try:
        if parts.password:
            user = [unquote(parts.username)] if parts.username else []
            writer.write(_resp("AUTH", *user, unquote(parts.password)))
            assert await reader.readline() == b"+OK\r\n"
        yield reader, writer
    finally:
        writer.close()
        await writer.wait_closed()


async def _calls_during(rs: RedisServiceStore, query: ServiceQuery) -> tuple[Any, dict[str, int]]:
    """The page for ``query``, and how many of each command the server ran for it (those scripts ran included).

    Counted from MONITOR, in this test's database only: the server's ``INFO commandstats`` would count every other
    client's commands too (another xdist worker's, another checkout's test run).
    """
    database = int(urlsplit(REDIS_URL).path.strip("/") or 0)
    end = f"end-of-find-{uuid4().hex}"
    calls: Counter[str] = Counter()
    async with _bare_connection(REDIS_URL) as (monitor, monitoring), _bare_connection(REDIS_URL) as (_, other):
        monitoring.write(_resp("MONITOR"))
        assert await monitor.readline() == b"+OK\r\n"
        page = await rs.find(query)
        other.write(_resp("ECHO", end))  # after the find's last command: the end of what to count
        while end not in (line := (await monitor.readline()).decode(errors="replace")):
            if (seen := re.match(r'\+[\d.]+ \[(\d+) [^\]]*\] "([^"]+)"', line)) and int(seen[1]) == database:
                calls[seen[2].lower()] += 1
    return page, dict(calls)


async def test_a_page_is_one_round_trip_that_reads_only_the_page(rs: RedisServiceStore, wire: list[bytes]) -> None:
    for i in range(300):
        await _create(rs, f"svc-{i:03d}", tags=("even",) if i % 2 == 0 else ("odd",))
    page, calls = await _calls_during(rs, ServiceQuery(limit=100))
    assert ([r.slug for r in page.items][:2], len(page.items), page.next_after) == (
        ["svc-000", "svc-001"],
        100,
        "svc-099",
    )
    assert calls["evalsha"] == 1  # one round trip
    assert calls["hmget"] <= 2 * 101  # each candidate checked, each match read: 101 records of 300, never all
    page, calls = await _calls_during(rs, ServiceQuery(tag="odd", limit=10, after="svc-100"))
    assert [r.slug for r in page.items] == [f"svc-{i:03d}" for i in range(101, 121, 2)]
    assert calls["hmget"] <= 2 * 11  # through the tag set: odd slugs only


async def test_a_filter_that_matches_nothing_reads_no_record(rs: RedisServiceStore, wire: list[bytes]) -> None:
    for i in range(300):
        await _create(rs, f"svc-{i:03d}")
    await _create(rs, "waiting", status=S.PENDING, next_check_at=None)
    for query in (
        ServiceQuery(tag="nothing"),
        ServiceQuery(capability="nothing"),
        ServiceQuery(statuses=frozenset({S.REJECTED, S.EXPIRED})),
        ServiceQuery(tag="nothing", text="svc"),
    ):
        wire.clear()
        page, calls = await _calls_during(rs, query)
        assert page.items == []
        assert wire == [b"EVALSHA"]  # one round trip
        assert "hmget" not in calls, query  # a few ZCARDs, no record read
    page, calls = await _calls_during(rs, ServiceQuery(statuses=frozenset({S.PENDING}), text="wait"))
    assert [r.slug for r in page.items] == ["waiting"]
    assert calls["hmget"] == 2  # through the pending set (checked, then read), not the 301 slugs


async def test_a_text_search_examines_at_most_the_budget_per_round_trip(tmp_path: Path, wire: list[bytes]) -> None:
    require_server("redis")
    async with RedisServiceStore(REDIS_URL, namespace="registry-budget", find_budget=50) as store:
        await store._clear_for_tests()
        memory = MemoryServiceStore()
        for i in range(300):
            record = make_record(f"svc-{i:03d}", description="needle" if i in (7, 260, 299) else "hay")
            for target in (store, memory):
                await target.create(record, first_version(record))
        wire.clear()
        page = await store.find(ServiceQuery(text="NEEDLE", limit=2))
        assert page == await memory.find(ServiceQuery(text="NEEDLE", limit=2))
        assert ([r.slug for r in page.items], page.next_after) == (["svc-007", "svc-260"], "svc-260")
        assert wire.count(b"EVALSHA") == 6  # 300 candidates, 50 a call: the last match is the 300th
        assert await store.find(ServiceQuery(text="needle", after="svc-260")) == await memory.find(
            ServiceQuery(text="needle", after="svc-260")
        )
        await store._clear_for_tests()


async def _index_sets(rs: RedisServiceStore) -> dict[str, set[str]]:
    sets: dict[str, set[str]] = {}
    async for key in rs.client.scan_iter(match="{registry}:*"):
        name = key.decode().removeprefix("{registry}:")
        if name.startswith(("status:", "tag:", "cap:")):
            sets[name] = {slug.decode() for slug in await rs.client.zrange(key, 0, -1)}
    return sets


async def test_the_filter_sets_follow_every_write_exactly(rs: RedisServiceStore) -> None:
    """Random creates, data writes, contacts, sweeps and deletes; the sets always say what the records say."""
    import random

    rng = random.Random(10)
    memory = MemoryServiceStore()
    words = ("a", "b", "c", "d é")
    clock = T0
    for _ in range(200):
        slug = f"s{rng.randrange(12):02d}"
        current = await memory.get(slug)
        action = rng.choice(("write", "write", "touch", "sweep", "delete"))
        if current is None:
            record = make_record(
                slug,
                at=clock,
                status=rng.choice((S.ACTIVE, S.PENDING)),
                tags=tuple(rng.sample(words, rng.randrange(3))),
                capabilities=tuple(rng.sample(words, rng.randrange(3))),
            )
            for store in (memory, rs):
                await store.create(record, first_version(record))
        elif action == "write":
            update = msgspec.structs.replace(
                current,
                tags=tuple(rng.sample(words, rng.randrange(4))),
                capabilities=tuple(rng.sample(words, rng.randrange(4))),
            )
            rewrite = Rewrite(status=rng.choice((None, S.ACTIVE, S.REJECTED, S.DEREGISTERED)))
            for store in (memory, rs):
                await store.replace(update, expected_revision=current.revision, rewrite=rewrite)
        elif action == "touch":
            contact = Contact(at=clock, status=rng.choice((S.ACTIVE, S.DEGRADED)), from_statuses=LIVE)
            assert await rs.touch(slug, contact) == await memory.touch(slug, contact)
        elif action == "sweep":
            assert await rs.sweep_due(clock, states.advance) == await memory.sweep_due(clock, states.advance)
        else:
            for store in (memory, rs):
                await store.delete(slug)
        clock += timedelta(seconds=rng.choice((1, 20, 40)))
    records = (await memory.find(ServiceQuery(limit=100))).items
    expected: dict[str, set[str]] = {}
    for record in records:
        expected.setdefault(f"status:{record.status.value}", set()).add(record.slug)
        for tag in record.tags:
            expected.setdefault(f"tag:{tag}", set()).add(record.slug)
        for capability in record.capabilities:
            expected.setdefault(f"cap:{capability}", set()).add(record.slug)
    assert await _index_sets(rs) == expected
    statuses = [None, frozenset({S.ACTIVE}), LIVE, frozenset({S.REJECTED, S.PENDING, S.EXPIRED})]
    for status in statuses:
        for tag in (None, *words):
            for capability in (None, "a"):
                query = ServiceQuery(statuses=status, tag=tag, capability=capability, limit=3)
                assert await rs.find(query) == await memory.find(query), query


async def test_stale_filter_entries_are_dropped_when_met(rs: RedisServiceStore) -> None:
    """A hash that expired natively leaves its tag entries behind; a slug registered again must not match them."""
    await _create(rs, "again", tags=("old",), capabilities=("was",))
    await rs.client.delete(rs._svc("again"))
    await _create(rs, "again", tags=("new",), capabilities=())
    assert (await rs.find(ServiceQuery(tag="old"))).items == []
    assert (await rs.find(ServiceQuery(capability="was"))).items == []
    assert await rs.client.exists("{registry}:tag:old", "{registry}:cap:was") == 0
    assert [r.slug for r in (await rs.find(ServiceQuery(tag="new"))).items] == ["again"]


# --- the first layout -------------------------------------------------------------------------------------------


async def _as_first_layout(rs: RedisServiceStore, namespace: str) -> None:
    """Rewrite what ``rs`` holds into the keys and fields the first layout used (no hash tag, no filter sets)."""
    client = rs.client
    old = f"{namespace}:"
    for slug, score in await client.zrange(rs._slugs_key, 0, -1, withscores=True):
        name = slug.decode()
        await client.rename(rs._svc(name), f"{old}svc:{name}")
        await client.rename(rs._hist(name), f"{old}hist:{name}")
        await client.hdel(f"{old}svc:{name}", "tags", "caps", "fs", "fn", "fd")
        await client.zadd(f"{old}slugs", {name: score})
    for slug, score in await client.zrange(rs._due_key, 0, -1, withscores=True):
        await client.zadd(f"{old}due", {slug: score})
    await client.delete(*[key async for key in client.scan_iter(match=f"{{{namespace}}}:*")])


async def test_records_of_the_first_layout_are_moved_when_the_store_opens(tmp_path: Path) -> None:
    require_server("redis")
    namespace = "registry-layout"
    async with RedisServiceStore(REDIS_URL, namespace=namespace) as first:
        await first._clear_for_tests()
        memory = MemoryServiceStore()
        for i in range(250):  # more than one migration chunk
            record = make_record(
                f"svc-{i:03d}",
                status=S.PENDING if i % 5 == 0 else S.ACTIVE,
                next_check_at=None if i % 5 == 0 else T0 + timedelta(seconds=30),
                tags=("odd",) if i % 2 else ("even",),
                description=f"Number {i}",
            )
            for store in (first, memory):
                await store.create(record, first_version(record))
        entry = VersionEntry(slug="svc-001", version="2.0.0", previous_version="1.0.0", recorded_at=T0)
        for store in (first, memory):
            await store.replace(
                msgspec.structs.replace(await memory.get("svc-001"), version="2.0.0"),
                expected_revision=1,
                history=entry,
            )
        await _as_first_layout(first, namespace)
        assert await first.client.exists(f"{namespace}:svc:svc-001") == 1
        ttl_before = await first.client.pttl(f"{namespace}:svc:svc-001")

    async with RedisServiceStore(REDIS_URL, namespace=namespace) as store:
        assert [key async for key in store.client.scan_iter(match=f"{namespace}:*")] == []
        assert 0 < await store.client.pttl(store._svc("svc-001")) <= ttl_before  # the safety-net expiry kept
        for query in (
            ServiceQuery(limit=500),
            ServiceQuery(tag="odd", limit=7),
            ServiceQuery(statuses=frozenset({S.PENDING}), limit=500),
            ServiceQuery(text="NUMBER 24", limit=5),
            ServiceQuery(capability="search", after="svc-200"),
        ):
            assert await store.find(query) == await memory.find(query), query
        assert await store.versions("svc-001") == await memory.versions("svc-001")
        contact = Contact(at=T0 + timedelta(seconds=1), status=S.DEGRADED, from_statuses=LIVE)
        assert await store.touch("svc-003", contact) == await memory.touch("svc-003", contact)
        assert [r.slug for r in (await store.find(ServiceQuery(statuses=frozenset({S.DEGRADED})))).items] == ["svc-003"]
        now = T0 + timedelta(seconds=40)
        assert await store.sweep_due(now, states.advance, limit=500) == await memory.sweep_due(
            now, states.advance, limit=500
        )
        await store._clear_for_tests()


def test_a_namespace_with_braces_is_refused() -> None:
    with pytest.raises(ValueError, match="hash tag"):
        RedisServiceStore(REDIS_URL, namespace="a{b}")


# --- the wire -------------------------------------------------------------------------------------------------------


async def test_hot_paths_skip_redis_pys_per_call_layers(rs: RedisServiceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """No argument-inspecting wrapper, no retry or observability layer, no response callback on touch and get."""
    await _create(rs, "lean")
    import redis.asyncio.client as client_module
    import redis.utils as utils_module

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("a per-call layer of redis-py ran")

    monkeypatch.setattr(utils_module, "_get_filterable_args", refuse)
    monkeypatch.setattr(client_module.Redis, "execute_command", refuse)
    contact = Contact(at=T0 + timedelta(seconds=1), status=S.ACTIVE, from_statuses=CONTACT_FROM)
    assert (await rs.touch("lean", contact)).contact_revision == 2
    assert (await rs.get("lean")).contact_revision == 2
    assert [r.slug for r in (await rs.find(ServiceQuery())).items] == ["lean"]


async def test_the_pool_is_sized_from_the_setting() -> None:
    require_server("redis")
    for size, expected in ((None, 50), (7, 7)):
        store = create_store(REDIS_URL, pool_size=size)
        async with store:
            pool = store.client.connection_pool  # type: ignore[union-attr]
            assert (type(pool), pool.max_connections) == (aioredis.BlockingConnectionPool, expected)


async def test_the_direct_path_reconnects_after_the_server_dropped_its_connections(rs: RedisServiceStore) -> None:
    """As after a server restart: pooled connections are dead; the next calls reconnect instead of failing."""
    await _create(rs, "again")
    await asyncio.gather(*(rs.get("again") for _ in range(5)))  # several pooled connections
    link = rs._link
    assert isinstance(link, _Direct)
    ours = [conn._writer.get_extra_info("sockname") for conn in link._idle if conn._writer]
    assert len(ours) >= 2
    async with aioredis.Redis.from_url(
        _redis_url(REDIS_URL)
    ) as admin:  # only this store's connections: others share it
        for host, port in ours:
            await admin.client_kill_filter(addr=f"{host}:{port}")
    contact = Contact(at=T0 + timedelta(seconds=1), status=S.ACTIVE, from_statuses=CONTACT_FROM)
    touched = await asyncio.gather(*(rs.touch("again", contact) for _ in range(5)))
    assert all(record is not None for record in touched)


# --- the unchanged upsert -----------------------------------------------------------------------------------------


async def _upserts(store: ServiceStore, wire: list[bytes]) -> list[tuple[Any, ...]]:
    """One scripted life of upserts (unchanged, changed, pending, expired, foreign, rejected) through the core.

    Each step's outcome: what the upsert answered (or the error it raised), the stored record, the history and the
    events appended; on Redis also the round trips it took.
    """
    from litestar_registry import RegistryConfig
    from litestar_registry.core.auth import Principal, Role
    from litestar_registry.core.clock import ManualClock
    from litestar_registry.core.models import Registration
    from litestar_registry.core.registry import Registry
    from litestar_registry.plugin import registry_policy

    clock = ManualClock()
    config = RegistryConfig(store=store, clock=clock, auto_approve_slugs=["svc"], history_limit=5)  # type: ignore[arg-type]
    registry = Registry(store, registry_policy(config), clock=clock)
    owner, other = Principal(account="team", role=Role.SERVICE), Principal(account="x", role=Role.SERVICE)
    admin = Principal(account="root", role=Role.ADMIN)
    cursor = 0
    outcomes: list[tuple[Any, ...]] = []

    def registration(slug: str = "svc", **fields: Any) -> Registration:
        values: dict[str, Any] = {"name": "Svc", "version": "1.0", "ttl_seconds": 10, "metadata": {"a": 1, "b": [2.5]}}
        values.update(fields)
        return Registration(slug=slug, tags=("t",), **values)

    async def step(name: str, call: Any, slug: str = "svc") -> None:
        nonlocal cursor
        wire.clear()
        try:
            answer: Any = await call
        except Exception as exc:  # the outcome compared is the error's type
            answer = type(exc).__name__
        trips = len(wire)
        page = await store.read_events(cursor, limit=100)
        cursor = page.last_id
        events = [(e.topic, e.subject, e.occurred_at, e.data) for e in page.items]
        outcomes.append((name, answer, await store.get(slug), await store.versions(slug), events, trips))

    await step("new", registry.upsert(registration(), owner))
    clock.advance(1)
    await step("unchanged", registry.upsert(registration(), owner))
    clock.advance(1)
    await step("pinged, unchanged", registry.ping("svc", owner))
    await step("unchanged again", registry.upsert(registration(), owner))
    clock.advance(15)  # a window missed
    await registry.sweep()
    await step("degraded, unchanged", registry.upsert(registration(), owner))
    clock.advance(1)
    await step("metadata in another order", registry.upsert(registration(metadata={"b": [2.5], "a": 1}), owner))
    await step("a float for an int", registry.upsert(registration(metadata={"a": 1.0, "b": [2.5]}), owner))
    await step("new version", registry.upsert(registration(version="2.0"), owner))
    await step("default TTL", registry.upsert(registration(version="2.0", ttl_seconds=None), owner))
    await step("another account", registry.upsert(registration(version="2.0", ttl_seconds=None), other))
    await step("an admin", registry.upsert(registration(version="2.0", ttl_seconds=None), admin))
    clock.advance(10_000)  # expired, not swept: registers afresh
    await step("expired, unchanged", registry.upsert(registration(version="2.0", ttl_seconds=None), owner))
    clock.advance(10_000)
    await registry.sweep()
    await step("swept, unchanged", registry.upsert(registration(version="2.0", ttl_seconds=None), owner))
    await step("pending", registry.upsert(registration("wait"), owner), "wait")
    clock.advance(1)
    await step("pending, unchanged", registry.upsert(registration("wait"), owner), "wait")
    await registry.reject("wait", admin)
    await step("rejected, unchanged", registry.upsert(registration("wait"), owner), "wait")
    return outcomes


@pytest.mark.parametrize("backend", ["memory"])
async def test_an_unchanged_upsert_is_one_round_trip_and_stores_what_the_general_path_stores(
    rs: RedisServiceStore, wire: list[bytes], backend: str, tmp_path: Path
) -> None:
    """The Redis ``refresh`` script against the memory store, which always takes the core's general path."""
    async with open_store(backend, tmp_path) as memory:
        expected = await _upserts(memory, [])
    got = await _upserts(rs, wire)
    assert [outcome[:5] for outcome in got] == [outcome[:5] for outcome in expected]
    trips = {outcome[0]: outcome[5] for outcome in got}
    for name in ("unchanged", "unchanged again", "degraded, unchanged", "pending, unchanged"):
        assert trips[name] == 1, name
    for name in ("new version", "metadata in another order", "expired, unchanged"):
        assert trips[name] == 2, name  # the refresh that missed answered the record: no read before the write
    answers = {outcome[0]: outcome[1] for outcome in got}
    assert (answers["another account"], answers["rejected, unchanged"]) == ("AccessDenied", "IllegalTransition")
    topics = {outcome[0]: [event[0] for event in outcome[4]] for outcome in got}
    assert topics["expired, unchanged"] == [Topic.SERVICE_REGISTERED]
    assert topics["unchanged"] == topics["pending, unchanged"] == []
    assert topics["degraded, unchanged"] == [Topic.SERVICE_DEGRADED]  # the sweep's before it, nothing of its own


# --- the reply format -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "at",
    [
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1901, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 12, 1, 17, 0, 0, 999_999, tzinfo=UTC),
        datetime(9000, 6, 30, 23, 59, 59, 999_999, tzinfo=UTC),  # beyond 2^53 microseconds
    ],
)
async def test_times_come_back_to_the_microsecond_from_the_reply_format(rs: RedisServiceStore, at: datetime) -> None:
    """The scripts answer times as msgpack timestamps built in Lua; they must equal what was written."""
    record = make_record("timed", at=at)
    await rs.create(record, first_version(record))
    stored = await rs.get("timed")
    assert stored is not None
    assert (stored.last_seen_at, stored.deadline_at, stored.expires_at, stored.next_check_at) == (
        record.last_seen_at,
        record.deadline_at,
        record.expires_at,
        record.next_check_at,
    )
    assert stored == msgspec.structs.replace(record, revision=1, contact_revision=1)


async def test_a_contact_logged_by_the_previous_reply_format_still_reads(rs: RedisServiceStore) -> None:
    """Change-log entries of a contact keep the record's fields; those written before held '<length>:<bytes>' pairs."""
    record = make_record("old", status=S.DEGRADED)
    await rs.create(record, first_version(record))
    values = [
        msgspec.msgpack.encode(record),
        b"active",
        b"0",
        *(str(to_micros(t)).encode() for t in (record.last_seen_at, record.deadline_at, record.expires_at)),
        str(to_micros(record.deadline_at)).encode(),
        msgspec.msgpack.encode(None),
        b"1",
        b"2",
    ]
    old = b"".join(b"%d:%b" % (len(value), value) for value in values)
    client = rs.client
    count = await client.incr("{registry}:event_id")
    fields = {"t": "service.recovered", "s": "old", "at": to_micros(T0), "p": "degraded", "r": old}
    await client.xadd("{registry}:events", fields, id=f"{count}-0")  # type: ignore[arg-type]
    [event] = (await rs.read_events(count - 1)).items
    assert (event.topic, event.subject, event.data["status"], event.data["previous_status"]) == (
        Topic.SERVICE_RECOVERED,
        "old",
        "active",
        "degraded",
    )


async def test_a_digest_left_behind_by_an_earlier_versions_data_write_is_not_trusted(rs: RedisServiceStore) -> None:
    """An earlier version's data write moves the revision but not the digest: the refresh must not match it."""
    from litestar_registry.core.models import Registration

    record = make_record("rolled")
    await rs.create(record, first_version(record))
    same = Registration(
        **{name: getattr(record, name) for name in Registration.__struct_fields__},
    )
    at = T0 + timedelta(seconds=1)
    refreshed, _ = await rs.refresh(same, at=at, from_statuses=LIVE)
    assert refreshed is not None
    assert refreshed.revision == 2
    await rs.client.hincrby("{registry}:svc:rolled", "rev", 1)  # as the earlier version's replace.lua did
    refreshed, current = await rs.refresh(same, at=at, from_statuses=LIVE)
    assert refreshed is None
    assert current is not None
    assert current.revision == 3
