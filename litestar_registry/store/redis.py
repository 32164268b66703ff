"""A Redis/Valkey store (standalone, behind Sentinel, or Redis Cluster): hashes, sorted sets, a Lua script a write.

Layout, under the key prefix ``{ns}:`` (``ns`` is the namespace, ``registry`` by default; the braces make it the
*hash tag* of every key, so every key one script touches sits in one Redis Cluster slot):

``{ns}:svc:{slug}`` (hash)
    ``record``: the whole :class:`~litestar_registry.core.models.ServiceRecord` as msgpack, as of the last data write;
    beside it the fields the scripts read or change on their own, which win over the blob's copies: ``rev`` (the data
    revision), ``crev`` (the contact revision), ``status``, ``fail`` (failure count), ``seen``, ``deadline``,
    ``expires``, ``next`` (epoch microseconds, exact integers; ``next`` is empty when there is no next check),
    ``health`` (msgpack), ``ttl`` (microseconds), ``windows``, ``account`` (absent when ``None``), ``hdrop`` (how
    many history entries were dropped beyond the limit; absent means none), ``dfp`` (a digest of the record's
    registration data, written by every data write: an upsert that sends the same data only restarts the clock, in
    one ``refresh`` script that reads nothing first) and ``dfpr`` (the revision it was written at: a digest that a
    data write of an earlier version of this store left behind is not trusted; absent in older records, which take
    the general path once),
    and for the list filters ``tags`` and
    ``caps`` (msgpack arrays) and ``fs``, ``fn``, ``fd`` (slug, name and description, case-folded by Python).
``{ns}:hist:{slug}`` (list)
    The version history, msgpack entries, oldest first. An entry's position (the page cursor) is ``hdrop`` plus its
    index, stable while the oldest entries are trimmed.
``{ns}:slugs`` (sorted set, every score 0)
    Every slug, for cursor pages in slug order (``ZRANGEBYLEX``).
``{ns}:status:{status}``, ``{ns}:tag:{tag}``, ``{ns}:cap:{capability}`` (sorted sets, every score 0)
    The slugs in each status, with each tag, with each capability: the list filters' indexes, kept by the same scripts
    that write the records.
``{ns}:due`` (sorted set)
    Slugs that have a next check, scored by ``next_check_at`` in epoch microseconds: a sweep reads what is due
    (``ZRANGEBYSCORE``), so it costs what is due, not how many services exist.
``{ns}:events`` (stream) and ``{ns}:event_id`` (string)
    The change log: one entry per event, its stream id ``<n>-0`` with ``n`` from ``INCR`` on the counter, appended
    by the same script as the change (``_log.lua``), so ids follow the order the server runs the scripts. Fields:
    ``t`` topic, ``s`` subject, ``at`` epoch microseconds, then ``d`` (the payload as msgpack), ``n`` (tenant) and
    ``st`` (the status a data write stored), or for a contact's transition, decided in ``touch.lua``, ``p`` (the
    previous status) and ``r`` (the record's fields after it), from which the store builds the payload when it reads.
    A stream rather than a sorted set and a hash: ids in order are its own (``XRANGE`` from a cursor, and ``XADD``
    refuses an id below the last), ``XTRIM MINID`` drops by id without listing what it drops, and entries are packed
    compactly. Reading is one ``events`` script (the counter and a page; a sparse filter examines at most
    ``find_budget`` entries a call), trimming one ``trim`` script (by id, then from the oldest entry while older than
    the limit: it costs what it drops). The counter is never lowered: ids are not reused after a trim.

Each write is one Lua script (``EVALSHA``, one round trip), so it decides atomically in the server: ``create`` fails
on a taken slug, ``replace`` and a conditional ``delete`` compare the data revision (``replace`` also the status, and
it restarts the clock from the stored contact time, trims the history and returns the stored fields), and ``touch``
checks status, expiry and account, ignores a contact older than the stored one, computes the new deadlines from the
record's own TTL (integer microseconds, so they equal what Python's datetime arithmetic gives) and returns the
fields. A ping racing a delete finds no hash and writes nothing, so it never resurrects the service. A read is one
``read`` script (one ``HMGET``). Scripts answer a record as one string (``_pack.lua``), not ten: redis-py parses each
string of a reply in Python. A list page is one ``find`` script: it walks the smallest index the filters allow (the
union of the wanted statuses' sets, the tag's set, the capability's set, or all slugs; one ``ZCARD`` each tells)
from the cursor, checks
each candidate against its record and returns the page's records; a filter that matches nothing costs a few
``ZCARD`` calls. The text filter (``q``) has no index: it is checked on the candidates of the narrowest other filter,
and one call examines at most ``find_budget`` index entries (500 by default), so the server is never blocked longer
than that; a page whose matches are sparser costs one more round trip per ``find_budget`` entries examined. Measured
on a loaded two-core machine: 5 to 10 microseconds of server time per record examined, so a needle that matches
nothing among 100,000 services, with no other filter, costs 0.5 to 1 s in 200 calls; narrow it with a status, tag or
capability filter.

The sweep reads the due range and those records (two round trips), applies the core's ``advance`` in Python and writes
the status fields back in one pipelined batch of ``advance`` scripts conditional on the contact revision: of several
app instances sweeping one server, only one changes a given record; the losers read the due range again, so each
call still fills its ``limit`` when that much is due. A due record that ``advance`` leaves as it is leaves the due
index, as on the memory store.

Commands go straight onto connections the store keeps (at most ``max_connections``; it packs the command, sends it,
reads the reply), without redis-py's per-call layers (argument inspection, pool conditions and timeouts, retry and
observability wrappers, response callbacks): the hot paths cost one round trip and little Python. A script the server
has forgotten (a restart, a failover) is loaded again on ``NOSCRIPT``. On Redis Cluster (``?cluster=true`` in the
URL, or a ``RedisCluster`` client) redis-py's cluster client routes the commands; one namespace lives in one slot, so
Cluster brings failover, not sharding, to a registry (use one namespace per registry and several registries to spread
them).

Records written by the first layout (keys ``{ns}:...`` without the hash tag, no filter sets) are moved to this one
when the store opens (:meth:`RedisServiceStore.open`): each service in one script, history and native expiry kept.

Native expiry is a safety net, not the registry's clock. The core expires silent services itself (the sweeper
persists ``expired``, and reads apply :func:`~litestar_registry.core.states.advance`), and an expired record stays
visible until the slug registers again, as on every backend. Only keys of live records (``active``, ``degraded``)
get a Redis expiry: ``ttl * expiry_windows`` plus ``orphan_retention_seconds`` (a day by default) after each write,
measured on the server's clock. Every contact is a write, so the key outlives the record's ``expires_at`` by at
least the retention, wherever the app's clock stands (a relative expiry, because the registry's clock may be a test
clock far from the server's). A live service abandoned while no sweeper runs therefore vanishes a day after it
expired instead of staying forever; records in every other status, including those the sweeper expired, are kept
(``PERSIST``). Index entries cannot expire with their hash, so readers skip a slug whose hash is gone and drop its
index entries atomically (only if the hash is still absent); ``find`` also drops filter-set entries that the record
does not back.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import hashlib
import math
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from importlib import resources
from typing import Any, Protocol, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError, NoScriptError, ResponseError, TimeoutError

from litestar_registry.core.errors import ServiceExists, ServiceNotFound, StaleWrite
from litestar_registry.core.events import (
    ChangeEvent,
    EventDraft,
    EventPage,
    Topic,
    contact_topic,
    service_draft,
    sweep_topic,
    with_status,
)
from litestar_registry.core.models import (
    Contact,
    HealthReport,
    Page,
    Registration,
    Rewrite,
    ServiceQuery,
    ServiceRecord,
    ServiceStatus,
    VersionEntry,
    VersionPage,
)
from litestar_registry.core.ports import Advance, Refreshed, ServiceStore, Touched
from litestar_registry.core.states import LIVE
from litestar_registry.store.epoch import from_micros, micros, to_micros

__all__ = ("RedisServiceStore",)

_SCHEMES = {"valkey": "redis", "valkeys": "rediss"}
_SCRIPT_NAMES = (
    "create",
    "replace",
    "refresh",
    "delete",
    "touch",
    "advance",
    "unschedule",
    "prune",
    "versions",
    "find",
    "migrate",
    "read",
    "events",
    "trim",
)
_INDEXING = frozenset({"create", "replace", "refresh", "delete", "touch", "advance", "prune", "migrate"})
"""Scripts that write records or their indexes: they get the shared helpers of ``_index.lua``."""
_LOGGING = frozenset({"create", "replace", "delete", "touch", "advance"})
"""Scripts that append to the change log: they get the helpers of ``_log.lua`` too."""
_READ_FIELDS = ("record", "status", "fail", "seen", "deadline", "expires", "next", "health", "rev", "crev")
"""The hash fields a record is rebuilt from, in the order the scripts return them (packed by ``_pack.lua``)."""


class _Stored(msgspec.Struct, array_like=True):
    """A record as the scripts answer it (``_pack.lua``): its stored blob and the hash fields that win over it.

    One msgpack array, decoded by one typed decoder: no field is parsed by Python code.
    """

    record: ServiceRecord
    status: ServiceStatus
    failure_count: int
    last_seen_at: datetime
    deadline_at: datetime
    expires_at: datetime
    next_check_at: datetime | None
    health: HealthReport | None
    revision: int
    contact_revision: int  # 0 in records written before it existed

    def merged(self) -> ServiceRecord:
        return msgspec.structs.replace(
            self.record,
            status=self.status,
            failure_count=self.failure_count,
            last_seen_at=self.last_seen_at,
            deadline_at=self.deadline_at,
            expires_at=self.expires_at,
            next_check_at=self.next_check_at,
            health=self.health,
            revision=self.revision,
            contact_revision=self.contact_revision,
        )


_decode_stored = msgspec.msgpack.Decoder(_Stored | None).decode
_decode_page = msgspec.msgpack.Decoder(list[_Stored]).decode
_NEW_FORMAT = (0x9A, 0xC0)
"""First byte of a record as ``_pack.lua`` answers it (an array of ten, or nil): the change log's entries written
before it held the fields as '<length>:<bytes>' pairs, which start with a digit or '-'."""
_ANY_STATUS = "*"
_DEFAULT_MAX_CONNECTIONS = 50
_DEFAULT_FIND_BUDGET = 500
_MIGRATE_CHUNK = 200
_TRIM_BUDGET = 10_000
_MAX_CURSOR = 2**53
"""Cursors beyond this (no log gets there) are read as this: Lua's numbers are exact up to it."""
"""Change-log entries one ``trim`` call reads at most to find what is old enough to drop (it calls again if need be)."""
_ATTEMPTS = 3
"""Tries of a command that meets a dropped connection, as redis-py's default ``Retry`` (three)."""

_encode = msgspec.msgpack.Encoder().encode
_decode_record = msgspec.msgpack.Decoder(ServiceRecord).decode
_decode_version = msgspec.msgpack.Decoder(VersionEntry).decode
_decode_health = msgspec.msgpack.Decoder(HealthReport | None).decode
_decode_data = msgspec.msgpack.Decoder(dict[str, Any]).decode

Command = tuple[Any, ...]
_REGISTRATION_FIELDS = Registration.__struct_fields__


def _fingerprint(data: Registration | ServiceRecord) -> bytes:
    """A digest of the registration data ``data`` holds (``dfp``): equal digests mean equal data.

    Encoded values, not Python equality: data that is equal but encodes differently (a map in another order) only
    misses the one-round-trip refresh, never the other way round.
    """
    encoded = _encode([getattr(data, name) for name in _REGISTRATION_FIELDS])
    return hashlib.blake2b(encoded, digest_size=16).digest()


def _redis_url(url: str) -> str:
    """Return ``url`` with a ``valkey://`` or ``valkeys://`` scheme spelled the way redis-py expects."""
    scheme, sep, rest = url.partition("://")
    return f"{_SCHEMES.get(scheme.lower(), scheme)}{sep}{rest}" if sep else url


def _split_cluster(url: str) -> tuple[str, bool]:
    """``url`` without our ``cluster`` query parameter, and whether it asked for Redis Cluster."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    cluster = [value for key, value in query if key == "cluster"]
    if not cluster:
        return url, False
    rest = urlencode([(key, value) for key, value in query if key != "cluster"])
    return urlunsplit(parts._replace(query=rest)), cluster[-1].lower() in {"1", "true", "yes", "on"}


def _load_script(name: str) -> str:
    folder = resources.files("litestar_registry.store").joinpath("redis_scripts")
    statuses = ", ".join(f"'{status.value}'" for status in ServiceStatus)
    text = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    if name in _LOGGING:
        text = folder.joinpath("_log.lua").read_text(encoding="utf-8") + text
    if name in _INDEXING:
        text = folder.joinpath("_index.lua").read_text(encoding="utf-8") + text
    text = folder.joinpath("_pack.lua").read_text(encoding="utf-8") + text
    return f"local STATUSES = {{{statuses}}}\n{text}"


def _unpack(data: bytes, count: int, pos: int = 0) -> tuple[list[bytes | None], int]:
    """``count`` fields packed by ``_pack.lua`` from ``data[pos:]``, and the position after them."""
    fields: list[bytes | None] = []
    for _ in range(count):
        if data[pos] == 45:  # '-': absent
            fields.append(None)
            pos += 1
        else:
            colon = data.index(b":", pos)
            end = colon + 1 + int(data[pos:colon])
            fields.append(data[colon + 1 : end])
            pos = end
    return fields, pos


def _packed(values: Sequence[str]) -> bytes:
    return _encode(list(values))


@functools.lru_cache(maxsize=64)
def _values(statuses: frozenset[ServiceStatus]) -> tuple[str, ...]:
    """The values of ``statuses``, sorted: a script's status arguments (the same few sets, on every contact)."""
    return tuple(sorted(status.value for status in statuses))


def _draft_args(events: Sequence[EventDraft]) -> list[Any]:
    """The arguments that hand ``events`` to a script (``_log.lua``): their count, then five for each."""
    args: list[Any] = [len(events)]
    for draft in events:
        args += [
            draft.topic.value,
            draft.subject,
            to_micros(draft.occurred_at),
            _encode(draft.data),
            draft.tenant or "",
        ]
    return args


_TRANSITION_TO = {
    status: next(
        ((other.value, topic.value) for other in ServiceStatus if (topic := contact_topic(other, status)) is not None),
        ("", ""),
    )
    for status in ServiceStatus
}
"""For the status a contact writes: the status from which that is a transition, and its topic (``touch.lua``)."""


def _event(entry: list[Any]) -> ChangeEvent:
    """A change-log entry as the ``events`` script returns it (``[id, [field, value, ...]]``): see ``_log.lua``."""
    raw, values = entry
    fields = {values[i].decode(): values[i + 1] for i in range(0, len(values), 2)}
    topic = Topic(fields["t"].decode())
    at = from_micros(int(fields["at"]))
    if "r" in fields:  # logged by touch.lua: the payload is built here from the record it kept
        record = cast("ServiceRecord", RedisServiceStore._unpacked(fields["r"]))
        draft = service_draft(topic, record, at, previous_status=ServiceStatus(fields["p"].decode()))
        data = draft.data
    else:
        data = _decode_data(fields["d"])
        if "st" in fields:
            data = with_status(
                EventDraft(topic=topic, occurred_at=at, subject="", data=data), ServiceStatus(fields["st"].decode())
            ).data
    tenant = fields.get("n")
    return ChangeEvent(
        id=int(raw.split(b"-", 1)[0]),
        topic=topic,
        occurred_at=at,
        subject=fields["s"].decode(),
        data=data,
        tenant=None if tenant is None else tenant.decode(),
    )


class _Link(Protocol):
    """How commands reach the server: one command and its reply, or a pipelined batch."""

    async def call(self, *args: Any) -> Any: ...

    async def batch(self, commands: Sequence[Command]) -> list[Any]:
        """The replies in order; a command that failed leaves its exception in its place."""
        ...

    async def load(self, script: str) -> None:
        """Load a script (on Cluster, on every primary)."""
        ...


def _pack(args: Sequence[Any]) -> bytes:
    """One command in the Redis protocol (RESP): what redis-py's ``pack_command`` makes, at a fraction of its cost.

    Takes what the store sends: ``bytes``, ``str`` (UTF-8) and ``int``.
    """
    items = [arg if type(arg) is bytes else arg.encode() if isinstance(arg, str) else b"%d" % arg for arg in args]
    return b"*%d\r\n" % len(items) + b"".join([b"$%d\r\n%b\r\n" % (len(item), item) for item in items])


class _Direct:
    """Commands packed and sent straight onto a connection, the reply read back as the server sent it.

    The store keeps connections of its own, made like the pool's (same class, same settings) and at most ``size``
    of them, in a list: redis-py's ``get_connection`` costs a good part of a ping on every call (redis-py 8 wraps it
    in a deprecated-argument check that inspects the call's signature, then it waits on a condition under a timeout
    and probes the socket). The client's own pool stays for everything else. A connection that fails mid-command
    disconnects itself (redis-py's ``Connection`` does), so the next user reconnects instead of reading a stale
    reply; a command that met a dropped connection (a server restart, a failover) is sent again, up to three tries
    in all, as redis-py's own default retry does.
    """

    def __init__(self, pool: aioredis.ConnectionPool, size: int) -> None:
        self._make: Callable[[], Any] = pool.make_connection
        self._idle: list[Any] = []
        self._made: list[Any] = []
        self._free = asyncio.Semaphore(size)

    async def _acquire(self) -> Any:
        await self._free.acquire()
        try:
            if self._idle:
                return self._idle.pop()
            conn = self._make()  # it connects on its first command
            self._made.append(conn)
            return conn
        except BaseException:
            self._free.release()
            raise

    def _give_back(self, conn: Any) -> None:
        self._idle.append(conn)
        self._free.release()

    @staticmethod
    async def _send(conn: Any, packed: bytes) -> None:
        """Write ``packed`` as redis-py's ``send_packed_command`` does, without its ``wait_for`` on every call.

        ``wait_for`` runs the write as a task of its own; the write of a small command is done once ``write``
        returns (the socket took it all), so the timeout is only needed, and only applied, when it did not.
        """
        if not conn.is_connected:
            await conn.connect_check_health(check_health=False)
        writer = conn._writer
        try:
            writer.write(packed)
            if writer.transport.get_write_buffer_size() or writer.transport.is_closing():
                await asyncio.wait_for(writer.drain(), conn.socket_timeout)
        except builtins.TimeoutError:  # redis-py's TimeoutError is not the builtin one
            await conn.disconnect(nowait=True)
            raise TimeoutError("Timeout writing to socket") from None
        except OSError as exc:
            await conn.disconnect(nowait=True)
            raise ConnectionError(f"Error while writing to socket: {exc}") from exc
        except BaseException:
            await conn.disconnect(nowait=True)  # a write cut short leaves the connection unusable, as redis-py says
            raise

    async def call(self, *args: Any) -> Any:
        for attempt in range(_ATTEMPTS):
            conn = await self._acquire()
            try:
                await self._send(conn, _pack(args))
                return await conn.read_response()
            except (ConnectionError, TimeoutError):
                if attempt == _ATTEMPTS - 1:
                    raise
            finally:
                self._give_back(conn)
        raise AssertionError("unreachable")  # pragma: no cover

    async def batch(self, commands: Sequence[Command]) -> list[Any]:
        for attempt in range(_ATTEMPTS):
            conn = await self._acquire()
            try:
                await self._send(conn, b"".join(map(_pack, commands)))
                replies: list[Any] = []
                for _ in commands:
                    try:
                        replies.append(await conn.read_response())
                    except ResponseError as exc:
                        replies.append(exc)
                return replies
            except (ConnectionError, TimeoutError):
                if attempt == _ATTEMPTS - 1:
                    raise
            finally:
                self._give_back(conn)
        raise AssertionError("unreachable")  # pragma: no cover

    async def load(self, script: str) -> None:
        await self.call("SCRIPT", "LOAD", script)

    async def aclose(self) -> None:
        """Disconnect every connection made."""
        for conn in self._made:
            await conn.disconnect()
        self._made.clear()
        self._idle.clear()


class _Client:
    """Commands through a redis-py client (Redis Cluster, a client the caller gave, a foreign loop's short-lived one).

    With ``limit``, at most that many commands are in flight at once: redis-py's cluster client has no blocking pool,
    and fails a burst beyond its connections per node instead of queueing it.
    """

    def __init__(self, client: aioredis.Redis | RedisCluster, limit: int | None = None) -> None:
        self._client = client
        self._slots = None if limit is None else asyncio.Semaphore(limit)

    async def call(self, *args: Any) -> Any:
        if self._slots is None:
            return await self._client.execute_command(*args)
        async with self._slots:
            return await self._client.execute_command(*args)

    async def batch(self, commands: Sequence[Command]) -> list[Any]:
        if self._slots is None:
            return await self._batch(commands)
        async with self._slots:
            return await self._batch(commands)

    async def _batch(self, commands: Sequence[Command]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return await pipe.execute(raise_on_error=False)

    async def load(self, script: str) -> None:
        await self._client.script_load(script)


class RedisServiceStore(ServiceStore):
    """Service records in Redis or Valkey (``redis://``, ``rediss://``, ``valkey://``, ``valkeys://``, ``unix://``).

    Construction does no I/O; :meth:`open` connects (unless a client was given), loads the scripts and moves records
    of the first layout. A client passed in belongs to the caller, who closes it; it must not decode responses. Add
    ``?cluster=true`` to the URL for Redis Cluster (any node's address), or pass a ``RedisCluster`` client.

    redis-py connections belong to the event loop that opened them. A call from another loop (a test client's
    portal thread, a helper thread with its own loop) runs on a short-lived connection of its own, closed before the
    call returns, instead of failing with "attached to a different loop"; the app's own loop always uses the pool.
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "registry",
        client: aioredis.Redis | RedisCluster | None = None,
        orphan_retention_seconds: float | None = 86_400.0,
        max_connections: int | None = None,
        find_budget: int = _DEFAULT_FIND_BUDGET,
    ) -> None:
        """Prepare a store for ``url``; nothing connects before :meth:`open`.

        Args:
            url: The server, as a ``redis://``, ``rediss://``, ``valkey://``, ``valkeys://`` or ``unix://`` URL;
                ``?cluster=true`` for Redis Cluster.
            namespace: Prefix of every key this store uses (and their Cluster hash tag); stores with different
                namespaces share a database safely. It may not contain ``{`` or ``}``.
            client: A ready client to use instead of one built from ``url`` (it must not decode responses).
            orphan_retention_seconds: How long the keys of a live service outlive its expiry without any write (the
                safety net for when no sweeper runs); ``None`` disables native expiry.
            max_connections: Size of the connection pool (a blocking pool: a burst beyond it waits for a free
                connection). ``None``: ``?max_connections=`` in the URL, else 50. With a ``client`` (or on Cluster),
                at most this many commands (50 for ``None``) are in flight at once, whatever its pool does.
            find_budget: Index entries one list call examines at most in the server before it answers (see the
                module's docstring): bounds how long a text search blocks the server.
        """
        if "{" in namespace or "}" in namespace:
            raise ValueError("the namespace may not contain '{' or '}': it becomes the hash tag of every key")
        if client is not None and client.get_connection_kwargs().get("decode_responses"):
            raise ValueError("RedisServiceStore needs a client with decode_responses=False (records are msgpack)")
        if find_budget < 1:
            raise ValueError("find_budget must be at least 1")
        self.url = url
        self.namespace = namespace
        self._client = client
        self._owns_client = client is None
        self._link: _Link | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retention_ms = None if orphan_retention_seconds is None else math.ceil(orphan_retention_seconds * 1000)
        self._max_connections = max_connections
        self._find_budget = find_budget
        self._scripts: dict[str, tuple[str, str]] = {}
        """Each script's text and SHA-1 (what ``EVALSHA`` names it by)."""
        self._prefix = f"{{{namespace}}}:"
        self._slugs_key = f"{self._prefix}slugs"
        self._due_key = f"{self._prefix}due"
        self._log_keys = [f"{self._prefix}events", f"{self._prefix}event_id"]
        """The change log (a stream) and its counter."""

    # --- lifecycle ----------------------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._client is None:
            url, cluster = _split_cluster(_redis_url(self.url))
            if cluster:
                self._client = RedisCluster.from_url(
                    url, decode_responses=False, max_connections=self._max_connections or _DEFAULT_MAX_CONNECTIONS
                )
            else:
                # A blocking pool: a burst of requests beyond ``max_connections`` waits for a free connection instead
                # of failing with "Too many connections", as redis-py's default pool does once it is full.
                options: dict[str, Any] = {}
                if self._max_connections is not None or "max_connections=" not in url:
                    options["max_connections"] = self._max_connections or _DEFAULT_MAX_CONNECTIONS
                pool = aioredis.BlockingConnectionPool.from_url(url, decode_responses=False, **options)
                self._client = aioredis.Redis.from_pool(pool)  # the client owns the pool and closes it with itself
            self._owns_client = True
        client = self._client
        self._loop = asyncio.get_running_loop()
        if isinstance(client, RedisCluster) or not self._owns_client:
            # A client of the caller's (behind Sentinel, say) may have a pool that fails a burst instead of queueing it.
            self._link = _Client(client, limit=self._max_connections or _DEFAULT_MAX_CONNECTIONS)
        else:
            connections = client.connection_pool
            self._link = _Direct(connections, connections.max_connections)
        self._scripts = {}
        for name in _SCRIPT_NAMES:
            text = _load_script(name)
            self._scripts[name] = (text, hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest())
        # Load every script up front, so that each later call is a single EVALSHA (on Cluster, on every primary).
        for text, _ in self._scripts.values():
            await self._link.load(text)
        await self._migrate_first_layout(self._link)

    async def close(self) -> None:
        client, link, self._client, self._loop, self._link = self._client, self._link, None, None, None
        if isinstance(link, _Direct):
            await link.aclose()
        if client is not None and self._owns_client:
            await client.aclose()

    @property
    def client(self) -> aioredis.Redis | RedisCluster:
        """The open client (bound to the event loop that called :meth:`open`)."""
        if self._client is None or not self._scripts:
            raise RuntimeError("RedisServiceStore is not open: call open() first (the plugin does, at startup)")
        return self._client

    @asynccontextmanager
    async def _use(self) -> AsyncIterator[_Link]:
        """The link for the running event loop: the pool's, or a short-lived client's on a foreign loop."""
        self.client  # noqa: B018 - raises when not open
        link = cast("_Link", self._link)
        if asyncio.get_running_loop() is self._loop or not self._owns_client:
            yield link
            return
        url, cluster = _split_cluster(_redis_url(self.url))
        foreign: aioredis.Redis | RedisCluster = (
            RedisCluster.from_url(url, decode_responses=False)
            if cluster
            else aioredis.Redis.from_url(url, decode_responses=False)
        )
        try:
            yield _Client(foreign)
        finally:
            await foreign.aclose()

    # --- keys and encoding --------------------------------------------------------------------------------------

    def _svc(self, slug: str) -> str:
        return f"{self._prefix}svc:{slug}"

    def _hist(self, slug: str) -> str:
        return f"{self._prefix}hist:{slug}"

    def _write_keys(self, slug: str) -> list[str]:
        return [self._svc(slug), self._hist(slug), self._slugs_key, self._due_key]

    async def _script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """One script call on the link for the running loop, with no context manager on the store's own loop.

        The hot paths' entry: the app always runs on the loop that opened the store; another loop takes ``_use``.
        """
        link = self._link
        if link is not None and self._scripts and (self._loop is asyncio.get_running_loop() or not self._owns_client):
            return await self._run(link, name, keys, args)
        async with self._use() as link:
            return await self._run(link, name, keys, args)

    async def _run(self, link: _Link, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """One script call, one round trip (two more when the server had forgotten the script)."""
        text, sha = self._scripts[name]
        try:
            return await link.call("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            await link.load(text)
            return await link.call("EVALSHA", sha, len(keys), *keys, *args)

    def _expire_ms(self, record: ServiceRecord) -> str:
        if self._retention_ms is None or record.status not in LIVE:
            return ""
        silent_us = micros(record.ttl * record.expiry_windows)
        return str(-(-silent_us // 1000) + self._retention_ms)  # milliseconds rounded up, as touch.lua does

    @staticmethod
    def _filter_fields(record: ServiceRecord) -> list[bytes | str]:
        """The hash fields the list filters read: tags, capabilities, and the case-folded text."""
        return [
            "tags",
            _packed(record.tags),
            "caps",
            _packed(record.capabilities),
            "fs",
            record.slug.casefold(),
            "fn",
            record.name.casefold(),
            "fd",
            (record.description or "").casefold(),
        ]

    @classmethod
    def _data_fields(cls, record: ServiceRecord) -> list[bytes | str | int]:
        """The hash field/value pairs a data write sets (the account aside)."""
        return [
            "record",
            _encode(record),
            "dfp",
            _fingerprint(record),
            "ttl",
            micros(record.ttl),
            "windows",
            record.expiry_windows,
            *cls._filter_fields(record),
        ]

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

    @classmethod
    def _unpacked(cls, packed: bytes) -> ServiceRecord | None:
        """The record a script's packed reply holds (``None`` when the hash is gone)."""
        if packed[0] in _NEW_FORMAT:
            stored = _decode_stored(packed)
            return None if stored is None else stored.merged()
        return cls._assemble(_unpack(packed, len(_READ_FIELDS))[0])  # a change-log entry of an earlier version

    async def _load(self, link: _Link, slugs: Sequence[bytes]) -> list[ServiceRecord | None]:
        """The records of ``slugs`` in one round trip (``None`` for the vanished)."""
        replies = await self._run_batch(link, [("read", [self._svc(slug.decode())], []) for slug in slugs])
        return [self._unpacked(reply) for reply in replies]

    def _prune_call(self, slugs: Sequence[bytes]) -> tuple[str, list[str], list[Any]]:
        """Drop the index entries and history of ``slugs`` whose hash is gone (only if it still is)."""
        first = slugs[0].decode()
        keys = [self._svc(first), self._hist(first), self._slugs_key, self._due_key]
        for slug in slugs[1:]:
            keys += [self._svc(slug.decode()), self._hist(slug.decode())]
        return "prune", keys, [self._prefix, *slugs]

    async def _run_batch(self, link: _Link, calls: Sequence[tuple[str, list[str], list[Any]]]) -> list[Any]:
        """Run scripts in one pipelined round trip; reload and rerun only those the server had forgotten."""
        results: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for attempt in range(2):
            commands = []
            for i in todo:
                name, keys, args = calls[i]
                commands.append(("EVALSHA", self._scripts[name][1], len(keys), *keys, *args))
            replies = await link.batch(commands)
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
                await link.load(self._scripts[name][0])
            todo = missing
        return results

    # --- the first layout ---------------------------------------------------------------------------------------

    async def _migrate_first_layout(self, link: _Link) -> int:
        """Move every service the first layout left under this namespace (keys without the hash tag); return how many.

        Runs at every open and finds nothing to do once done; several instances opening at once move each service
        once (each script checks the old hash is still there). Instances of the previous version must be stopped
        first: their writes meanwhile would land in the old keys.
        """
        old = f"{self.namespace}:"
        old_slugs, old_due = f"{old}slugs", f"{old}due"
        moved = 0
        if isinstance(self._client, RedisCluster):
            return moved  # the first layout's scripts spanned slots: it never ran on a cluster
        while True:
            slugs = cast("list[bytes]", await link.call("ZRANGE", old_slugs, 0, _MIGRATE_CHUNK - 1))
            if not slugs:
                break
            blobs = await link.batch([("HGET", f"{old}svc:{slug.decode()}", "record") for slug in slugs])
            calls = []
            for slug, blob in zip(slugs, blobs, strict=True):
                name = slug.decode()
                keys = [*self._write_keys(name), f"{old}svc:{name}", f"{old}hist:{name}", old_slugs, old_due]
                if isinstance(blob, bytes):
                    record = _decode_record(blob)
                    fields = self._filter_fields(record)
                    args = [self._prefix, name, _packed(record.tags), _packed(record.capabilities), *fields]
                else:  # gone meanwhile: the script only drops its index entries
                    args = [self._prefix, name, _packed(()), _packed(()), "fs", name.casefold()]
                calls.append(("migrate", keys, args))
            moved += sum(int(result) for result in await self._run_batch(link, calls))
        await link.call("DEL", old_due)  # entries whose slug left the slug index (nothing else)
        return moved

    # --- the protocol -------------------------------------------------------------------------------------------

    async def create(
        self, record: ServiceRecord, history: VersionEntry, *, events: Sequence[EventDraft] = ()
    ) -> ServiceRecord:
        record = msgspec.structs.replace(record, revision=1, contact_revision=1)
        created = await self._script(*self._create_call(record, history, events))
        if not created:
            raise ServiceExists(f"service '{record.slug}' is already registered")
        return record

    def _create_call(
        self, record: ServiceRecord, history: VersionEntry, events: Sequence[EventDraft] = ()
    ) -> tuple[str, list[str], list[Any]]:
        """The ``create`` script call: ``record`` (at revision 1), its first history entry and ``events``."""
        score, expire_ms, fields = self._write_args(record)
        args = [
            self._prefix,
            record.slug,
            score,
            expire_ms,
            _encode(history),
            record.status.value,
            _packed(record.tags),
            _packed(record.capabilities),
            *_draft_args(events),
            *fields,
        ]
        return "create", self._write_keys(record.slug), args

    async def replace(
        self,
        record: ServiceRecord,
        *,
        expected_revision: int,
        history: VersionEntry | None = None,
        rewrite: Rewrite | None = None,
        history_limit: int | None = None,
        events: Sequence[EventDraft] = (),
    ) -> ServiceRecord:
        rewrite = rewrite or Rewrite()
        restart = rewrite.restart_at is not None
        statuses = rewrite.from_statuses
        args: list[Any] = [
            self._prefix,
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
            _packed(record.tags),
            _packed(record.capabilities),
            *_draft_args(events),
            *self._data_fields(record),
        ]
        reply = await self._script("replace", self._write_keys(record.slug), args)
        if reply == -1:
            raise ServiceNotFound(f"service '{record.slug}' is not registered")
        if reply == -2:
            raise StaleWrite(f"service '{record.slug}' changed concurrently")
        stored = self._unpacked(reply)
        assert stored is not None
        return stored

    async def refresh(
        self,
        registration: Registration,
        *,
        at: datetime,
        from_statuses: frozenset[ServiceStatus],
        account: str | None = None,
    ) -> Refreshed:
        args: list[Any] = [
            self._prefix,
            registration.slug,
            _fingerprint(registration),
            to_micros(at),
            "0" if account is None else "1",
            account or "",
            "" if self._retention_ms is None else self._retention_ms,
            *_values(from_statuses),
        ]
        written, packed = await self._script("refresh", self._write_keys(registration.slug), args)
        record = self._unpacked(packed)
        return Refreshed(record, None) if written else Refreshed(None, record)

    async def get(self, slug: str) -> ServiceRecord | None:
        return self._unpacked(await self._script("read", [self._svc(slug)], []))

    async def find(self, query: ServiceQuery) -> Page:
        if query.statuses is not None and not query.statuses:
            return Page(items=[])
        wanted = query.limit + 1  # one more than the page: whether a next page exists
        filters: list[Any] = [
            _ANY_STATUS if query.statuses is None else " ".join(sorted(status.value for status in query.statuses)),
            "0" if query.tag is None else "1",
            query.tag or "",
            "0" if query.capability is None else "1",
            query.capability or "",
            "1" if query.text else "0",
            query.text.casefold() if query.text else "",
        ]
        found: list[_Stored] = []
        cursor = query.after or ""
        async with self._use() as link:
            while True:
                args = [self._prefix, cursor, wanted - len(found), self._find_budget, *filters]
                reply = cast("list[bytes]", await self._run(link, "find", [self._slugs_key, self._due_key], args))
                found += _decode_page(reply[1])
                cursor = reply[0].decode()
                if len(found) >= wanted or not cursor:
                    break
        items = [stored.merged() for stored in found[: query.limit]]
        more = len(found) > query.limit and bool(items)
        return Page(items=items, next_after=items[-1].slug if more else None)

    async def delete(
        self, slug: str, *, expected_revision: int | None = None, events: Sequence[EventDraft] = ()
    ) -> bool:
        expected = "" if expected_revision is None else expected_revision
        args = [self._prefix, slug, expected, *_draft_args(events)]
        deleted = await self._script("delete", self._write_keys(slug), args)
        return bool(deleted)

    async def touch_logged(self, slug: str, contact: Contact) -> Touched:
        retention = "" if self._retention_ms is None or contact.status not in LIVE else self._retention_ms
        args: list[Any] = [
            self._prefix,
            slug,
            to_micros(contact.at),
            contact.status.value,
            b"" if contact.health is None else _encode(contact.health),
            "0" if contact.account is None else "1",
            contact.account or "",
            retention,
            *_TRANSITION_TO[contact.status],
            *_values(contact.from_statuses),
        ]
        reply = await self._script("touch", self._write_keys(slug), args)
        if reply is None:
            return Touched(None, None)
        if isinstance(reply, list):  # the contact moved the status, and the script logged the transition
            return Touched(self._unpacked(reply[0]), contact_topic(ServiceStatus(args[8]), contact.status))
        return Touched(self._unpacked(reply), None)

    async def read_events(
        self,
        after: int = 0,
        *,
        limit: int = 100,
        topics: Collection[Topic] | None = None,
        subject: str | None = None,
    ) -> EventPage:
        filters: list[Any] = ["0", ""] if subject is None else ["1", subject]
        filters += ["0"] if topics is None else ["1", *sorted(Topic(topic).value for topic in topics)]
        items: list[ChangeEvent] = []
        cursor = min(max(after, 0), _MAX_CURSOR)
        async with self._use() as link:
            while True:
                args = [cursor, max(limit - len(items), 0), self._find_budget, *filters]
                last, examined, done, entries = await self._run(link, "events", self._log_keys, args)
                items += map(_event, entries)
                cursor = int(examined)
                if done or len(items) >= limit:
                    return EventPage(items=items, last_id=int(last))

    async def trim_events(self, *, keep_after: int | None = None, older_than: datetime | None = None) -> int:
        keep = "" if keep_after is None else keep_after
        older = "" if older_than is None else to_micros(older_than)
        dropped = 0
        async with self._use() as link:
            while True:
                count, more = await self._run(link, "trim", self._log_keys[:1], [keep, older, _TRIM_BUDGET])
                dropped += int(count)
                if not more:
                    return dropped

    async def version_page(self, slug: str, *, after: int | None = None, limit: int | None = None) -> VersionPage:
        args = ["" if after is None else after, "" if limit is None else limit + 1]
        reply = await self._script("versions", [self._svc(slug), self._hist(slug)], args)
        first, entries = cast("tuple[int, list[bytes]]", reply)
        more = limit is not None and len(entries) > limit
        items = [_decode_version(entry) for entry in (entries[:limit] if more else entries)]
        return VersionPage(items=items, next_after=int(first) + len(items) - 1 if more else None)

    async def sweep_due(
        self, now: datetime, advance: Advance, *, limit: int = 100
    ) -> list[tuple[ServiceRecord, ServiceRecord]]:
        async with self._use() as link:
            return await self._sweep(link, now, advance, limit)

    async def _sweep(
        self, link: _Link, now: datetime, advance: Advance, limit: int
    ) -> list[tuple[ServiceRecord, ServiceRecord]]:
        changed: list[tuple[ServiceRecord, ServiceRecord]] = []
        tried: set[tuple[str, int]] = set()
        now_score = to_micros(now)
        while len(changed) < limit:
            wanted = limit - len(changed)
            slugs = cast(
                "list[bytes]", await link.call("ZRANGEBYSCORE", self._due_key, "-inf", now_score, "LIMIT", 0, wanted)
            )
            if not slugs:
                break
            writes: list[ServiceRecord] = []
            calls: list[tuple[str, list[str], list[Any]]] = []
            vanished: list[bytes] = []
            for slug, before in zip(slugs, await self._load(link, slugs), strict=True):
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
                    topic = sweep_topic(before.status, after.status)
                    draft = None if topic is None else service_draft(topic, after, now, previous_status=before.status)
                    args = [
                        self._prefix,
                        before.slug,
                        before.contact_revision,
                        after.status.value,
                        after.failure_count,
                        nxt,
                        "" if draft is None else draft.topic.value,
                        now_score,
                        b"" if draft is None else _encode(draft.data),
                    ]
                    calls.append(("advance", self._write_keys(before.slug), args))
            if vanished:
                calls.append(self._prune_call(vanished))
            if not calls:
                break
            results = await self._run_batch(link, calls)
            lost = 0
            advanced = (result for (name, _, _), result in zip(calls, results, strict=True) if name == "advance")
            for before, reply in zip(writes, advanced, strict=True):
                stored = None if reply is None else self._unpacked(reply)
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
        """Delete every key of this namespace, in both layouts (and nothing else: tests share one database)."""
        client = self.client
        for prefix in (self._prefix, f"{self.namespace}:"):
            pattern = "".join(f"\\{char}" if char in "*?[]\\" else char for char in prefix) + "*"
            batch: list[bytes] = [key async for key in client.scan_iter(match=pattern, count=500)]
            for start in range(0, len(batch), 500):
                if isinstance(client, RedisCluster):
                    for key in batch[start : start + 500]:  # keys of the first layout may span slots
                        await client.delete(key)
                else:
                    await client.delete(*batch[start : start + 500])
