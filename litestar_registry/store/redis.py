"""A Redis/Valkey store: one hash per service, sorted sets for slug order and due checks, Lua scripts for every write.

Layout, under a namespace prefix ``{ns}`` (``registry`` by default):

``{ns}:svc:{slug}`` (hash)
    ``record``: the whole :class:`~litestar_registry.core.models.ServiceRecord` as msgpack, as of the last data write;
    beside it the fields the scripts read or change on their own, which win over the blob's copies: ``rev`` (the data
    revision), ``crev`` (the contact revision), ``status``, ``fail`` (failure count), ``seen``, ``deadline``,
    ``expires``, ``next`` (epoch microseconds, exact integers; ``next`` is empty when there is no next check),
    ``health`` (msgpack), ``ttl`` (microseconds), ``windows``, ``account`` (absent when ``None``), and ``hdrop`` (how
    many history entries were dropped beyond the limit; absent means none).
``{ns}:hist:{slug}`` (list)
    The version history, msgpack entries, oldest first. An entry's position (the page cursor) is ``hdrop`` plus its
    index, stable while the oldest entries are trimmed.
``{ns}:slugs`` (sorted set, every score 0)
    Every slug, for cursor pages in slug order (``ZRANGEBYLEX``).
``{ns}:due`` (sorted set)
    Slugs that have a next check, scored by ``next_check_at`` in epoch microseconds: a sweep reads what is due
    (``ZRANGEBYSCORE``), so it costs what is due, not how many services exist.

Each write is one Lua script (``EVALSHA``, one round trip), so it decides atomically in the server: ``create`` fails
on a taken slug, ``replace`` and a conditional ``delete`` compare the data revision (``replace`` also the status, and
it restarts the clock from the stored contact time, trims the history and returns the stored fields), and ``touch``
checks status, expiry and account, ignores a contact older than the stored one, computes the new deadlines from the
record's own TTL (integer microseconds, so they equal what Python's datetime arithmetic gives) and returns the
fields. A ping racing a delete finds no hash and writes nothing, so it never resurrects the service. A read is one
``HMGET``; ``find`` walks the slug index 200 slugs at a time (one range read, one pipelined ``HMGET`` batch) and
filters in Python. The sweep reads the due range and those records (two round trips), applies the core's ``advance``
in Python and writes the status fields back in one pipelined batch of ``advance`` scripts conditional on the contact
revision: of several app instances sweeping one server, only one changes a given record; the losers read the due
range again, so each call still fills its ``limit`` when that much is due. A due record that ``advance`` leaves as it
is leaves the due index, as on the memory store.

Native expiry is a safety net, not the registry's clock. The core expires silent services itself (the sweeper
persists ``expired``, and reads apply :func:`~litestar_registry.core.states.advance`), and an expired record stays
visible until the slug registers again, as on every backend. Only keys of live records (``active``, ``degraded``)
get a Redis expiry: ``ttl * expiry_windows`` plus ``orphan_retention_seconds`` (a day by default) after each write,
measured on the server's clock. Every contact is a write, so the key outlives the record's ``expires_at`` by at
least the retention, wherever the app's clock stands (a relative expiry, because the registry's clock may be a test
clock far from the server's). A live service abandoned while no sweeper runs therefore vanishes a day after it
expired instead of staying forever; records in every other status, including those the sweeper expired, are kept
(``PERSIST``). Index entries cannot expire with their hash, so readers skip a slug whose hash is gone and drop its
index entries atomically (only if the hash is still absent).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from importlib import resources
from typing import Any, cast

import msgspec
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from litestar_registry.core.errors import ServiceExists, ServiceNotFound, StaleWrite
from litestar_registry.core.models import (
    Contact,
    HealthReport,
    Page,
    Rewrite,
    ServiceQuery,
    ServiceRecord,
    ServiceStatus,
    VersionEntry,
    VersionPage,
)
from litestar_registry.core.ports import Advance, ServiceStore
from litestar_registry.core.states import LIVE
from litestar_registry.store.epoch import from_micros, micros, to_micros
from litestar_registry.store.filters import matches

__all__ = ("RedisServiceStore",)

_SCHEMES = {"valkey": "redis", "valkeys": "rediss"}
_SCRIPT_NAMES = ("create", "replace", "delete", "touch", "advance", "unschedule", "prune", "versions")
_FIND_CHUNK = 200
_READ_FIELDS = ("record", "status", "fail", "seen", "deadline", "expires", "next", "health", "rev", "crev")
"""The hash fields a record is rebuilt from, in the order the scripts return them (HMGET: values only)."""
_ANY_STATUS = "*"

_encode = msgspec.msgpack.Encoder().encode
_decode_record = msgspec.msgpack.Decoder(ServiceRecord).decode
_decode_version = msgspec.msgpack.Decoder(VersionEntry).decode
_decode_health = msgspec.msgpack.Decoder(HealthReport | None).decode


def _redis_url(url: str) -> str:
    """Return ``url`` with a ``valkey://`` or ``valkeys://`` scheme spelled the way redis-py expects."""
    scheme, sep, rest = url.partition("://")
    return f"{_SCHEMES.get(scheme.lower(), scheme)}{sep}{rest}" if sep else url


def _load_script(name: str) -> str:
    folder = resources.files("litestar_registry.store").joinpath("redis_scripts")
    text = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    if name in {"create", "replace"}:
        text = folder.joinpath("_index.lua").read_text(encoding="utf-8") + text
    return text


class RedisServiceStore(ServiceStore):
    """Service records in Redis or Valkey (``redis://``, ``rediss://``, ``valkey://``, ``valkeys://``, ``unix://``).

    Construction does no I/O; :meth:`open` connects (unless a client was given) and loads the scripts. A client
    passed in belongs to the caller, who closes it; it must not decode responses.

    redis-py connections belong to the event loop that opened them. A call from another loop (a test client's
    portal thread, a helper thread with its own loop) runs on a short-lived connection of its own, closed before the
    call returns, instead of failing with "attached to a different loop"; the app's own loop always uses the pool.
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "registry",
        client: aioredis.Redis | None = None,
        orphan_retention_seconds: float | None = 86_400.0,
    ) -> None:
        """Prepare a store for ``url``; nothing connects before :meth:`open`.

        Args:
            url: The server, as a ``redis://``, ``rediss://``, ``valkey://``, ``valkeys://`` or ``unix://`` URL.
            namespace: Prefix of every key this store uses; stores with different namespaces share a database safely.
            client: A ready client to use instead of one built from ``url`` (it must not decode responses).
            orphan_retention_seconds: How long the keys of a live service outlive its expiry without any write (the
                safety net for when no sweeper runs); ``None`` disables native expiry.
        """
        if client is not None and client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("RedisServiceStore needs a client with decode_responses=False (records are msgpack)")
        self.url = url
        self.namespace = namespace
        self._client = client
        self._owns_client = client is None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retention_ms = None if orphan_retention_seconds is None else math.ceil(orphan_retention_seconds * 1000)
        self._scripts: dict[str, AsyncScript] = {}
        self._slugs_key = f"{namespace}:slugs"
        self._due_key = f"{namespace}:due"

    # --- lifecycle ----------------------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._client is None:
            # A blocking pool: a burst of requests beyond ``max_connections`` (50 by default; ``?max_connections=`` in
            # the URL) waits for a free connection instead of failing with "Too many connections", as redis-py's
            # default pool does once its 100 connections are in use.
            pool = aioredis.BlockingConnectionPool.from_url(_redis_url(self.url), decode_responses=False)
            self._client = aioredis.Redis.from_pool(pool)  # the client owns the pool and closes it with itself
            self._owns_client = True
        client = self._client
        self._loop = asyncio.get_running_loop()
        self._scripts = {name: client.register_script(_load_script(name)) for name in _SCRIPT_NAMES}
        # Load every script up front (one round trip), so that each later call is a single EVALSHA.
        async with client.pipeline(transaction=False) as pipe:
            for script in self._scripts.values():
                pipe.script_load(script.script)
            await pipe.execute()

    async def close(self) -> None:
        client, self._client, self._loop = self._client, None, None
        if client is not None and self._owns_client:
            await client.aclose()

    @property
    def client(self) -> aioredis.Redis:
        """The open client (bound to the event loop that called :meth:`open`)."""
        if self._client is None or not self._scripts:
            raise RuntimeError("RedisServiceStore is not open: call open() first (the plugin does, at startup)")
        return self._client

    @asynccontextmanager
    async def _use(self) -> AsyncIterator[aioredis.Redis]:
        """The client for the running event loop: the pool's, or a short-lived one on a foreign loop."""
        client = self.client
        if asyncio.get_running_loop() is self._loop or not self._owns_client:
            yield client
            return
        foreign = aioredis.Redis.from_url(_redis_url(self.url), decode_responses=False)
        try:
            yield foreign
        finally:
            await foreign.aclose()

    # --- keys and encoding --------------------------------------------------------------------------------------

    def _svc(self, slug: str) -> str:
        return f"{self.namespace}:svc:{slug}"

    def _hist(self, slug: str) -> str:
        return f"{self.namespace}:hist:{slug}"

    def _write_keys(self, slug: str) -> list[str]:
        return [self._svc(slug), self._hist(slug), self._slugs_key, self._due_key]

    def _expire_ms(self, record: ServiceRecord) -> str:
        if self._retention_ms is None or record.status not in LIVE:
            return ""
        silent_us = micros(record.ttl * record.expiry_windows)
        return str(-(-silent_us // 1000) + self._retention_ms)  # milliseconds rounded up, as touch.lua does

    @staticmethod
    def _data_fields(record: ServiceRecord) -> list[bytes | str | int]:
        """The hash field/value pairs a data write sets (the account aside)."""
        return ["record", _encode(record), "ttl", micros(record.ttl), "windows", record.expiry_windows]

    def _write_args(self, record: ServiceRecord) -> tuple[str, str, list[bytes | str | int]]:
        """The due score, the expiry and the hash field/value pairs for a full write of ``record`` (a create)."""
        fields: list[bytes | str | int] = [
            *self._data_fields(record),
            "status",
            record.status.value,
            "fail",
            record.failure_count,
            "seen",
            to_micros(record.last_seen_at),
            "deadline",
            to_micros(record.deadline_at),
            "expires",
            to_micros(record.expires_at),
            "next",
            "" if record.next_check_at is None else to_micros(record.next_check_at),
            "health",
            _encode(record.health),
        ]
        if record.account is not None:
            fields += ["account", record.account]
        score = "" if record.next_check_at is None else str(to_micros(record.next_check_at))
        return score, self._expire_ms(record), fields

    @staticmethod
    def _assemble(values: Sequence[bytes | None]) -> ServiceRecord | None:
        """Rebuild a record from its hash fields (in ``_READ_FIELDS`` order); ``None`` when the hash is gone.

        The blob is overlaid with the fields the scripts keep up to date.
        """
        blob, status, fail, seen, deadline, expires, nxt, health, rev, crev = values
        if blob is None:
            return None
        return msgspec.structs.replace(
            _decode_record(blob),
            status=ServiceStatus(cast("bytes", status).decode()),
            failure_count=int(cast("bytes", fail)),
            last_seen_at=from_micros(int(cast("bytes", seen))),
            deadline_at=from_micros(int(cast("bytes", deadline))),
            expires_at=from_micros(int(cast("bytes", expires))),
            next_check_at=from_micros(int(nxt)) if nxt else None,
            health=_decode_health(cast("bytes", health)),
            revision=int(cast("bytes", rev)),
            contact_revision=int(crev) if crev else 0,  # absent in records written before it existed
        )

    async def _load(self, client: aioredis.Redis, slugs: Sequence[bytes]) -> list[ServiceRecord | None]:
        """The records of ``slugs`` in one round trip (``None`` for the vanished)."""
        async with client.pipeline(transaction=False) as pipe:
            for slug in slugs:
                pipe.hmget(self._svc(slug.decode()), _READ_FIELDS)
            replies = cast("list[list[bytes | None]]", await pipe.execute())
        return [self._assemble(values) for values in replies]

    def _prune_call(self, slugs: Sequence[bytes]) -> tuple[str, list[str], list[Any]]:
        """Drop the index entries and history of ``slugs`` whose hash is gone (only if it still is)."""
        keys = [self._slugs_key, self._due_key]
        for slug in slugs:
            keys += [self._svc(slug.decode()), self._hist(slug.decode())]
        return "prune", keys, list(slugs)

    async def _run_batch(self, client: aioredis.Redis, calls: Sequence[tuple[str, list[str], list[Any]]]) -> list[Any]:
        """Run scripts in one pipelined round trip; reload and rerun only those the server had forgotten."""
        results: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for attempt in range(2):
            async with client.pipeline(transaction=False) as pipe:
                for i in todo:
                    name, keys, args = calls[i]
                    pipe.evalsha(self._scripts[name].sha, len(keys), *keys, *args)
                replies = await pipe.execute(raise_on_error=False)
            missing = []
            for i, reply in zip(todo, replies, strict=True):
                if isinstance(reply, NoScriptError) and attempt == 0:
                    missing.append(i)
                elif isinstance(reply, Exception):
                    raise reply
                else:
                    results[i] = reply
            if not missing:
                break
            for name in {calls[i][0] for i in missing}:
                script = self._scripts[name]
                script.sha = await client.script_load(script.script)
            todo = missing
        return results

    # --- the protocol -------------------------------------------------------------------------------------------

    async def create(self, record: ServiceRecord, history: VersionEntry) -> ServiceRecord:
        record = msgspec.structs.replace(record, revision=1, contact_revision=1)
        score, expire_ms, fields = self._write_args(record)
        args = [record.slug, score, expire_ms, _encode(history), *fields]
        async with self._use() as client:
            created = await self._scripts["create"](keys=self._write_keys(record.slug), args=args, client=client)
        if not created:
            raise ServiceExists(f"service '{record.slug}' is already registered")
        return record

    async def replace(
        self,
        record: ServiceRecord,
        *,
        expected_revision: int,
        history: VersionEntry | None = None,
        rewrite: Rewrite | None = None,
        history_limit: int | None = None,
    ) -> ServiceRecord:
        rewrite = rewrite or Rewrite()
        restart = rewrite.restart_at is not None
        statuses = rewrite.from_statuses
        args: list[Any] = [
            record.slug,
            expected_revision,
            _ANY_STATUS if statuses is None else " ".join(sorted(status.value for status in statuses)),
            "" if rewrite.status is None else rewrite.status.value,
            "" if rewrite.restart_at is None else to_micros(rewrite.restart_at),
            _encode(None) if restart and rewrite.clear_health else "",
            "" if self._retention_ms is None else self._retention_ms,
            b"" if history is None else _encode(history),
            "" if history_limit is None else history_limit,
            record.account or "",
            *self._data_fields(record),
        ]
        async with self._use() as client:
            reply = await self._scripts["replace"](keys=self._write_keys(record.slug), args=args, client=client)
        if reply == -1:
            raise ServiceNotFound(f"service '{record.slug}' is not registered")
        if reply == -2:
            raise StaleWrite(f"service '{record.slug}' changed concurrently")
        stored = self._assemble(cast("list[bytes | None]", reply))
        assert stored is not None
        return stored

    async def get(self, slug: str) -> ServiceRecord | None:
        async with self._use() as client:
            values = cast("list[bytes | None]", await client.hmget(self._svc(slug), _READ_FIELDS))
        return self._assemble(values)

    async def find(self, query: ServiceQuery) -> Page:
        async with self._use() as client:
            return await self._find(client, query)

    async def _find(self, client: aioredis.Redis, query: ServiceQuery) -> Page:
        lower = b"-" if query.after is None else b"(" + query.after.encode()
        items: list[ServiceRecord] = []
        while True:
            slugs = cast(
                "list[bytes]",
                await client.zrangebylex(self._slugs_key, lower, b"+", start=0, num=_FIND_CHUNK),
            )
            if not slugs:
                return Page(items=items)
            vanished: list[bytes] = []
            full = False
            for slug, record in zip(slugs, await self._load(client, slugs), strict=True):
                if record is None:
                    vanished.append(slug)
                    continue
                if not matches(record, query):
                    continue
                if len(items) >= query.limit:
                    full = True
                    break
                items.append(record)
            if vanished:
                await self._run_batch(client, [self._prune_call(vanished)])
            if full:
                return Page(items=items, next_after=items[-1].slug if items else None)
            if len(slugs) < _FIND_CHUNK:
                return Page(items=items)
            lower = b"(" + slugs[-1]

    async def delete(self, slug: str, *, expected_revision: int | None = None) -> bool:
        expected = "" if expected_revision is None else expected_revision
        async with self._use() as client:
            deleted = await self._scripts["delete"](keys=self._write_keys(slug), args=[slug, expected], client=client)
        return bool(deleted)

    async def touch(self, slug: str, contact: Contact) -> ServiceRecord | None:
        retention = "" if self._retention_ms is None or contact.status not in LIVE else self._retention_ms
        args: list[Any] = [
            slug,
            to_micros(contact.at),
            contact.status.value,
            b"" if contact.health is None else _encode(contact.health),
            "0" if contact.account is None else "1",
            contact.account or "",
            retention,
            *sorted(status.value for status in contact.from_statuses),
        ]
        keys = [self._svc(slug), self._hist(slug), self._due_key]
        async with self._use() as client:
            reply = await self._scripts["touch"](keys=keys, args=args, client=client)
        if reply is None:
            return None
        return self._assemble(cast("list[bytes | None]", reply))

    async def version_page(self, slug: str, *, after: int | None = None, limit: int | None = None) -> VersionPage:
        args = ["" if after is None else after, "" if limit is None else limit + 1]
        async with self._use() as client:
            reply = await self._scripts["versions"](keys=[self._svc(slug), self._hist(slug)], args=args, client=client)
        first, entries = cast("tuple[int, list[bytes]]", reply)
        more = limit is not None and len(entries) > limit
        items = [_decode_version(entry) for entry in (entries[:limit] if more else entries)]
        return VersionPage(items=items, next_after=int(first) + len(items) - 1 if more else None)

    async def sweep_due(
        self, now: datetime, advance: Advance, *, limit: int = 100
    ) -> list[tuple[ServiceRecord, ServiceRecord]]:
        async with self._use() as client:
            return await self._sweep(client, now, advance, limit)

    async def _sweep(
        self, client: aioredis.Redis, now: datetime, advance: Advance, limit: int
    ) -> list[tuple[ServiceRecord, ServiceRecord]]:
        changed: list[tuple[ServiceRecord, ServiceRecord]] = []
        tried: set[tuple[str, int]] = set()
        now_score = to_micros(now)
        while len(changed) < limit:
            wanted = limit - len(changed)
            slugs = cast(
                "list[bytes]", await client.zrangebyscore(self._due_key, "-inf", now_score, start=0, num=wanted)
            )
            if not slugs:
                break
            writes: list[ServiceRecord] = []
            calls: list[tuple[str, list[str], list[Any]]] = []
            vanished: list[bytes] = []
            for slug, before in zip(slugs, await self._load(client, slugs), strict=True):
                if before is None:
                    vanished.append(slug)
                    continue
                if (before.slug, before.contact_revision) in tried:
                    continue  # read before in this call and unchanged since: nothing new to do
                tried.add((before.slug, before.contact_revision))
                after = advance(before, now)
                if after == before:
                    calls.append(
                        (
                            "unschedule",
                            [self._svc(before.slug), self._due_key],
                            [before.slug, before.contact_revision],
                        )
                    )
                else:
                    writes.append(before)
                    nxt = "" if after.next_check_at is None else to_micros(after.next_check_at)
                    keys = [self._svc(before.slug), self._hist(before.slug), self._due_key]
                    args = [before.slug, before.contact_revision, after.status.value, after.failure_count, nxt]
                    calls.append(("advance", keys, args))
            if vanished:
                calls.append(self._prune_call(vanished))
            if not calls:
                break
            results = await self._run_batch(client, calls)
            lost = 0
            advanced = (result for (name, _, _), result in zip(calls, results, strict=True) if name == "advance")
            for before, reply in zip(writes, advanced, strict=True):
                stored = None if reply is None else self._assemble(cast("list[bytes | None]", reply))
                if stored is not None:
                    changed.append((before, stored))
                else:
                    lost += 1
            lost += sum(
                1 for (name, _, _), result in zip(calls, results, strict=True) if name == "unschedule" and not result
            )
            # Records another sweeper, a contact or a data write changed meanwhile left the due range or came back with
            # a new contact revision: read again until the limit is reached or the due range held no more than asked.
            if len(slugs) < wanted and not lost:
                break
        return changed

    # --- tests ----------------------------------------------------------------------------------------------------

    async def _clear_for_tests(self) -> None:
        """Delete every key of this namespace (and nothing else: tests share one database)."""
        pattern = "".join(f"\\{char}" if char in "*?[]\\" else char for char in self.namespace) + ":*"
        async with self._use() as client:
            batch: list[bytes] = []
            async for key in client.scan_iter(match=pattern, count=500):
                batch.append(key)
                if len(batch) >= 500:
                    await client.delete(*batch)
                    batch.clear()
            if batch:
                await client.delete(*batch)
