"""The SQL store: SQLite for one app instance, PostgreSQL for several instances sharing one registry.

Every call takes a connection of its own from the pool, so concurrent calls on one store object never share a
session: single statements (reads, ``touch``) run in autocommit mode, one round trip each; writes of several
statements run in one transaction. Conditional writes are decided by the database: a data write is ``UPDATE ... WHERE
revision = :expected`` and computes the contact columns it restarts from the row itself; ``touch`` guards the contact
time with ``CASE`` (an older contact leaves the row as it is, and still returns it); the sweep reads what is due
without locking it and writes the whole batch back in one statement, only the status columns, ``WHERE
contact_revision = :read``, skipping rows another transaction holds (``FOR UPDATE SKIP LOCKED`` on PostgreSQL). On
SQLite, which has one writer, a store queues its own writes instead of letting them poll for the database lock.
``touch``, ``get`` and the sweep's read are built once, with bind parameters.

The change log (``registry_events``) is written in the transaction of the change it records, its ids taken from a
counter row so that they follow commit order (see ``append_events``). A contact first tries the steady state, one
``UPDATE ... WHERE status = :new`` in autocommit mode as before; only when that matches nothing (the status moves, or
the contact is refused) does a transaction read the old status under the row lock, update, and append the
transition. A sweep whose batch announces something writes it and its events in one transaction.

List filters and their indexes (see ``_find_statement``): every walk below is in slug order and stops once the page is
full, so a page costs the rows it returns plus those the walk passes between them, never a sort of every match. The
status filter walks ``(status, slug)``. Tags and capabilities have a table of their own, ``registry_service_labels``,
keyed ``(kind, value, slug)`` and written in the transaction of every write that changes them: a tag (or a capability)
filter walks that key, one probe of the services' key per row, and a label nobody has costs one probe; a capability
given with a tag is one probe of the label key per row of the tag walked, so a pair that few services share costs a walk
of the tag's rows (10,000 of them: 10 to 15 ms on SQLite, 25 to 65 ms on PostgreSQL, on a loaded two-core machine). The
text filter (``q``) has no index on either dialect (``pg_trgm`` would serve it, but it is an extension the registry
cannot assume): it is a ``LIKE`` over the case-folded slug, name and description of the rows the other filters leave,
read in slug order until the page is full, so a rare needle costs a scan of those rows: 60 to 370 ms for 100,000 rows on
either dialect, measured on a two-core machine loaded by other work (the query alone took about 120 ms on PostgreSQL and
100 ms on SQLite there); narrow it with a status, tag or capability filter.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, urlencode

import msgspec
from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    event,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy import (
    cast as sql_cast,
)
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

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
    Page,
    Rewrite,
    ServiceQuery,
    ServiceRecord,
    ServiceStatus,
    VersionEntry,
    VersionPage,
)
from litestar_registry.core.ports import Advance, ServiceStore, Touched
from litestar_registry.core.states import LIVE
from litestar_registry.store.epoch import from_micros, micros, to_micros
from litestar_registry.store.sqlalchemy.models import (
    EventCounterModel,
    EventModel,
    ServiceLabelModel,
    ServiceModel,
    ServiceVersionModel,
)

if TYPE_CHECKING:
    from advanced_alchemy.config import SQLAlchemyAsyncConfig

__all__ = (
    "SUPPORTED_DIALECTS",
    "SQLAlchemyServiceStore",
    "append_events",
    "create_store_engine",
    "label_rows",
    "prepare_engine",
    "transaction",
)

SUPPORTED_DIALECTS = frozenset({"sqlite", "postgresql"})
"""Dialects the store knows how to write its upserts, batch writes and row locks for."""

_services = cast("Table", ServiceModel.__table__)
_versions = cast("Table", ServiceVersionModel.__table__)
_labels = cast("Table", ServiceLabelModel.__table__)
_events = cast("Table", EventModel.__table__)
_counter = cast("Table", EventCounterModel.__table__)
_POOL_OPTIONS = ("pool", "max_overflow")
DEFAULT_POSTGRES_POOL_SIZE = 20
"""Connections a PostgreSQL store opens at most unless told otherwise (``pool_size``)."""


def _split_pool_size(url: str, pool_size: int | None) -> tuple[str, int | None]:
    """``url`` without a ``pool_size`` query parameter (no driver knows it), and the size: the argument, else the URL's.

    Raises:
        ValueError: the URL's ``pool_size`` is not a positive integer.
    """
    base, _, text = url.partition("?")
    query = parse_qsl(text, keep_blank_values=True)
    given = [value for key, value in query if key == "pool_size"]
    if not given:
        return url, pool_size
    if not given[-1].isdigit() or int(given[-1]) < 1:
        raise ValueError(f"pool_size in the store URL must be a positive integer, not {given[-1]!r}")
    rest = urlencode([(key, value) for key, value in query if key != "pool_size"])
    return f"{base}?{rest}" if rest else base, pool_size if pool_size is not None else int(given[-1])


"""Engine options that size or choose a pool: dropped for the pool-less engine of a foreign event loop."""


def _json_text(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def create_store_engine(url: str, **options: Any) -> AsyncEngine:
    """An engine of a store's own (the registry's or the provisioning read model's).

    A SQLite file gets write-ahead logging on every connection.

    SQLite's default rollback journal makes each commit wait for two fsyncs, several milliseconds on most disks, and
    every ping is a commit. WAL with ``synchronous=NORMAL`` commits without waiting for the disk: a commit survives an
    application crash, and at worst the last ones are lost on power failure (services ping again). WAL needs the
    database on a local disk, not a network file system. An engine borrowed from the host keeps the host's settings.

    JSON columns are read and written with msgspec unless ``options`` say otherwise: the standard library's ``json``
    decoded five JSON columns a row in Python, a good part of what a ping or a list page cost.
    """
    options.setdefault("json_serializer", _json_text)
    options.setdefault("json_deserializer", msgspec.json.decode)
    engine = create_async_engine(url, **options)
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):

        @event.listens_for(engine.sync_engine, "connect")
        def _write_ahead(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


def _autocommit(engine: AsyncEngine) -> bool:
    """Whether the engine's connections start in autocommit (our own SQLite engines do)."""
    # What create_engine(isolation_level=...) set for every new connection.
    return getattr(engine.dialect, "_on_connect_isolation_level", None) == "AUTOCOMMIT"


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """``engine.begin()``, also on an engine whose connections start in autocommit (where BEGIN would be a no-op)."""
    async with engine.connect() as conn:
        if _autocommit(engine):
            conn = await conn.execution_options(isolation_level="SERIALIZABLE")
        async with conn.begin():
            yield conn


_LIVE_VALUES = sorted(status.value for status in LIVE)


BOTH = (False, True)
_SWEEP_RETRIES = 3
"""Rounds in a row in which a sweep claimed none of what it read before it gives the rest up to a later sweep."""
_SWEEP_BACKOFF = 0.002
"""Seconds a sweep waits, times the idle rounds so far, before it reads again."""


def _touch_statement(*, health: bool, account: bool, steady: bool) -> Any:
    """The one ``UPDATE ... RETURNING`` of a contact, built once with bind parameters.

    SQLAlchemy then reuses its compiled form, and the driver its prepared statement. Parameters: ``b_slug``, ``b_at``,
    ``b_status``, ``b_statuses`` (expanding), and ``b_health`` or ``b_account`` in the variants that take them.

    Every column keeps its value when the stored contact is newer than this one: one statement still, which answers
    the row as it stands (the newest contact wins whatever order concurrent ones arrive in). The ``steady`` variant
    matches only a row whose status is already the contact's, or whose contact is newer: no transition, no event.
    """
    c = _services.c
    at = bindparam("b_at", type_=BigInteger())
    newer = c.last_seen_us <= at

    def fresh(value: Any, column: Any) -> Any:
        return case((newer, value), else_=column)

    deadline = c.ttl_us + at
    values: dict[str, Any] = {
        "status": fresh(bindparam("b_status", type_=String()), c.status),
        "failure_count": fresh(literal(0), c.failure_count),
        "last_seen_us": fresh(at, c.last_seen_us),
        "deadline_us": fresh(deadline, c.deadline_us),
        "next_check_us": fresh(deadline, c.next_check_us),
        "expires_us": fresh(c.ttl_us * c.expiry_windows + at, c.expires_us),
        "contact_revision": c.contact_revision + fresh(literal(1), literal(0)),
    }
    if health:
        values["health"] = fresh(bindparam("b_health", type_=c.health.type), c.health)
    stmt = update(_services).where(
        c.slug == bindparam("b_slug"), c.status.in_(bindparam("b_statuses", expanding=True)), c.expires_us > at
    )
    if account:
        stmt = stmt.where(c.account == bindparam("b_account"))
    if steady:  # the status stays, or the contact is older than the stored one and changes nothing
        stmt = stmt.where(or_(c.status == bindparam("b_status", type_=String()), ~newer))
    return stmt.values(**values).returning(*c)


_TOUCH = {
    (health, account, steady): _touch_statement(health=health, account=account, steady=steady)
    for health in BOTH
    for account in BOTH
    for steady in BOTH
}
"""The contact statement for each (health given, account required, steady state only)."""
_STATUS_FOR_UPDATE = select(_services.c.status).where(_services.c.slug == bindparam("slug")).with_for_update()
"""A contact's slow path reads the status it replaces under the row lock (on SQLite, after :data:`_SQLITE_WRITER`)."""
_SQLITE_WRITER = update(_counter).where(_counter.c.id == 0).values(value=_counter.c.value)
"""A write that changes nothing, to open a SQLite transaction and take the database's write lock first.

Python's ``sqlite3`` opens a transaction only before a statement that starts with INSERT, UPDATE, DELETE or REPLACE:
a SELECT, or an UPDATE written with a CTE (``WITH ... UPDATE``, the sweep's), runs outside it. The store's own lock
keeps its writes apart, but another process (or store object) on the same file could then write between such a
statement and the rest of its transaction."""
_GET = select(_services).where(_services.c.slug == bindparam("slug"))
_DUE = (
    select(_services)
    .where(_services.c.next_check_us <= bindparam("now", type_=BigInteger()))
    .order_by(_services.c.next_check_us, _services.c.slug)
    .limit(bindparam("limit", type_=Integer()))
)
"""What is due, earliest first: a range scan on ``ix_registry_services_next_check``."""


def _sweep_statement(postgres: bool) -> Any:
    """The one ``UPDATE ... FROM`` that writes a sweep's batch, built once: the batch comes as bind parameters.

    Only the status columns, each row only if its ``contact_revision`` is still the one read, and on PostgreSQL only
    rows no other transaction holds: a contact holding a due row is skipped (``FOR UPDATE SKIP LOCKED``), not waited
    for, and the batch holds its row locks for this one statement only, so a ping to a due service waits for at most
    one statement, never for the reading, ``advance`` and writing of a whole batch. The batch is five arrays
    (``unnest``) on PostgreSQL, one JSON array of rows (``json_each``) on SQLite: one statement whatever the batch's
    size, compiled once (see :func:`_sweep_params`).
    """
    c = _services.c
    names = ("v_slug", "v_crev", "v_status", "v_fail", "v_next")
    if postgres:
        types: tuple[Any, ...] = (String(), Integer(), String(), Integer(), BigInteger())
        arrays: list[Any] = [bindparam(f"b_{name}", type_=ARRAY(kind)) for name, kind in zip(names, types, strict=True)]
        batch: Any = select(func.unnest(*arrays).table_valued(*names).render_derived()).cte("v")
    else:
        rows = func.json_each(bindparam("b_batch", type_=String())).table_valued("value")
        batch = select(*(func.json_extract(rows.c.value, f"$[{i}]").label(name) for i, name in enumerate(names))).cte(
            "v"
        )
    claimed = (
        select(c.slug)
        .join(batch, and_(c.slug == batch.c.v_slug, c.contact_revision == batch.c.v_crev))
        .with_for_update(skip_locked=True, of=_services)
        .cte("claimed")
    )
    return (
        update(_services)
        .where(
            c.slug == batch.c.v_slug,
            c.contact_revision == batch.c.v_crev,
            c.slug.in_(select(claimed.c.slug)),
        )
        .values(
            status=batch.c.v_status,
            failure_count=sql_cast(batch.c.v_fail, Integer()),
            next_check_us=sql_cast(batch.c.v_next, BigInteger()),
            contact_revision=c.contact_revision + 1,
        )
        .returning(*c)
    )


_SWEEP = {postgres: _sweep_statement(postgres) for postgres in BOTH}


def _bump_statement(postgres: bool) -> Any:
    """``value = value + :n`` on the counter's one row, returning the new value; the row is created by the first."""
    stmt = (postgres_insert if postgres else sqlite_insert)(_counter).values(
        id=1, value=bindparam("n", type_=BigInteger())
    )
    return stmt.on_conflict_do_update(
        index_elements=[_counter.c.id], set_={"value": _counter.c.value + stmt.excluded.value}
    ).returning(_counter.c.value)


_BUMP = {postgres: _bump_statement(postgres) for postgres in BOTH}
_APPEND = insert(_events)
_LAST_ID = select(_counter.c.value).where(_counter.c.id == 1)


async def append_events(conn: AsyncConnection, drafts: Sequence[EventDraft]) -> None:
    """Append ``drafts`` to the change log in the caller's transaction, as its last statements.

    Every writer to the registry's database appends with this one function, so the log keeps one sequence of ids: the
    registry store, and the provisioning read model that shares its engine. The caller's transaction must be a real one
    (:func:`transaction`, also on an engine that starts in autocommit).

    The ids come from the counter row (``value = value + n ... RETURNING value``), not from a sequence. The update
    locks the row until the transaction ends, so a second writer waits there until the first commits or rolls
    back, and takes the next ids only then: ids are handed out in commit order, and a rolled-back write gives its
    ids back with the counter. A sequence would hand them out in *statement* order, so on PostgreSQL with several
    writers id 8 could commit before id 7; a reader that had read past 8 would then never see 7. With the counter,
    once a reader sees id ``n`` every lower id has committed already. Appending last keeps the lock short and
    always taken after the writer's row locks, never before one (no deadlock between writers). On SQLite, which
    has one writer at a time, the order holds by itself.
    """
    if not drafts:
        return
    last = (await conn.execute(_BUMP[conn.dialect.name == "postgresql"], {"n": len(drafts)})).scalar_one()
    first = last - len(drafts) + 1
    await conn.execute(
        _APPEND,
        [
            {
                "id": first + offset,
                "topic": draft.topic.value,
                "occurred_at": draft.occurred_at,
                "subject": draft.subject,
                "tenant": draft.tenant,
                "data": draft.data,
            }
            for offset, draft in enumerate(drafts)
        ],
    )


_INT64_MAX = 2**63 - 1
_INT32_MAX = 2**31 - 1


def _read_statement(*, topics: bool, subject: bool) -> Any:
    """Events after ``b_after``, oldest first, at most ``b_limit``; of ``b_topics`` (expanding) and ``b_subject``."""
    e = _events.c
    stmt = (
        select(e.id, e.topic, e.occurred_at, e.subject, e.tenant, e.data)
        .where(e.id > bindparam("b_after", type_=BigInteger()))
        .order_by(e.id)
        .limit(bindparam("b_limit", type_=Integer()))
    )
    if topics:
        stmt = stmt.where(e.topic.in_(bindparam("b_topics", expanding=True)))
    if subject:
        stmt = stmt.where(e.subject == bindparam("b_subject", type_=String()))
    return stmt


_READ = {(topics, subject): _read_statement(topics=topics, subject=subject) for topics in BOTH for subject in BOTH}
"""The log's read for each (topics given, subject given)."""


def _sweep_params(plans: Sequence[tuple[ServiceRecord, ServiceRecord]], *, postgres: bool) -> dict[str, Any]:
    """The bind parameters of :data:`_SWEEP` for a batch of ``(before, after)``."""
    rows = [
        (
            before.slug,
            before.contact_revision,
            after.status.value,
            after.failure_count,
            None if after.next_check_at is None else to_micros(after.next_check_at),
        )
        for before, after in plans
    ]
    if not postgres:
        return {"b_batch": msgspec.json.encode(rows).decode()}
    names = ("b_v_slug", "b_v_crev", "b_v_status", "b_v_fail", "b_v_next")
    return {name: list(column) for name, column in zip(names, zip(*rows, strict=True), strict=True)}


def _row(record: ServiceRecord, revision: int) -> dict[str, Any]:
    """The column values that store ``record`` at ``revision`` (every column but the slug)."""
    return {**_data_row(record, revision), **_contact_row(record)}


def _contact_row(record: ServiceRecord) -> dict[str, Any]:
    """The status and contact columns of ``record``: what contact and sweeps move."""
    return {
        "status": record.status.value,
        "failure_count": record.failure_count,
        "last_seen_us": to_micros(record.last_seen_at),
        "deadline_us": to_micros(record.deadline_at),
        "expires_us": to_micros(record.expires_at),
        "next_check_us": None if record.next_check_at is None else to_micros(record.next_check_at),
        "health": msgspec.to_builtins(record.health),
        "contact_revision": record.contact_revision,
    }


def _data_row(record: ServiceRecord, revision: int) -> dict[str, Any]:
    """The data columns that store ``record`` at ``revision`` (neither the slug nor the contact columns)."""
    return {
        "name": record.name,
        "version": record.version,
        "description": record.description,
        "base_url": record.base_url,
        "health_url": record.health_url,
        "documentation_url": record.documentation_url,
        "account": record.account,
        "registered_at": record.registered_at,
        "updated_at": record.updated_at,
        "ttl_seconds": record.ttl_seconds,
        "ttl_us": micros(record.ttl),
        "expiry_windows": record.expiry_windows,
        "endpoints": msgspec.to_builtins(record.endpoints),
        "capabilities": list(record.capabilities),
        "tags": list(record.tags),
        "metadata": msgspec.to_builtins(record.metadata),
        "owner": msgspec.to_builtins(record.owner),
        "extensions": msgspec.to_builtins(record.extensions),
        "slug_folded": record.slug.casefold(),
        "name_folded": record.name.casefold(),
        "description_folded": (record.description or "").casefold(),
        "revision": revision,
    }


def label_rows(record: ServiceRecord) -> list[dict[str, str]]:
    """The rows of the label table (``registry_service_labels``) for ``record``'s tags and capabilities."""
    return [
        {"kind": kind, "value": value, "slug": record.slug}
        for kind, values in (("tag", record.tags), ("capability", record.capabilities))
        for value in dict.fromkeys(values)
    ]


def _record(row: RowMapping) -> ServiceRecord:
    """The domain record stored in ``row`` (a result row's mapping, keyed by column name)."""
    next_check = row["next_check_us"]
    return msgspec.convert(
        {
            "slug": row["slug"],
            "name": row["name"],
            "version": row["version"],
            "status": row["status"],
            "registered_at": row["registered_at"],
            "updated_at": row["updated_at"],
            "last_seen_at": from_micros(row["last_seen_us"]),
            "ttl_seconds": row["ttl_seconds"],
            "expiry_windows": row["expiry_windows"],
            "deadline_at": from_micros(row["deadline_us"]),
            "expires_at": from_micros(row["expires_us"]),
            "next_check_at": None if next_check is None else from_micros(next_check),
            "description": row["description"],
            "base_url": row["base_url"],
            "health_url": row["health_url"],
            "documentation_url": row["documentation_url"],
            "endpoints": row["endpoints"],
            "capabilities": row["capabilities"],
            "tags": row["tags"],
            "metadata": row["metadata"],
            "owner": row["owner"],
            "account": row["account"],
            "failure_count": row["failure_count"],
            "health": row["health"],
            "extensions": row["extensions"],
            "revision": row["revision"],
            "contact_revision": row["contact_revision"],
        },
        ServiceRecord,
    )


async def prepare_engine(
    engine: AsyncEngine, *, create_schema: bool, owned: bool, refuse: Callable[[str], Exception]
) -> None:
    """Check an engine at a store's open: its dialect, then (``create_schema``) the registry's tables.

    A dialect the SQL stores cannot serve raises ``refuse(name)``; ``create_schema`` brings the tables to the newest
    revision. An engine of the caller's own (``owned``) is disposed when either fails.
    """
    try:
        if engine.dialect.name not in SUPPORTED_DIALECTS:
            raise refuse(engine.dialect.name)
        if create_schema:
            from litestar_registry.store.sqlalchemy.migrate import ensure_schema

            async with transaction(engine) as conn:
                await conn.run_sync(ensure_schema)
    except BaseException:
        if owned:
            await engine.dispose()
        raise


class SQLAlchemyServiceStore(ServiceStore):
    """Service records in SQL through SQLAlchemy's asyncio engine: SQLite or PostgreSQL.

    Give either ``url`` (the store creates its engine in :meth:`open` and disposes it in :meth:`close`) or the host's
    advanced-alchemy ``config`` (the store borrows ``config.get_engine()`` and never disposes it).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        config: SQLAlchemyAsyncConfig | None = None,
        create_schema: bool = False,
        engine_options: dict[str, Any] | None = None,
        pool_size: int | None = None,
    ) -> None:
        """Configure the store; nothing connects before :meth:`open`.

        Args:
            url: An async SQLAlchemy URL (``sqlite+aiosqlite:///path``, ``postgresql+asyncpg://...``): the store owns
                the engine it creates from it.
            config: The host's advanced-alchemy config, whose engine the store shares instead.
            create_schema: Bring the registry's tables to the newest revision at :meth:`open` (development, tests,
                demos): a fresh database gets them at once and is stamped, an older one is migrated. In production
                leave it off and run ``litestar registry db upgrade`` as a deployment step.
            engine_options: Keyword arguments for ``create_async_engine``; only with ``url``.
            pool_size: The most connections the store's own engine opens at once (requests beyond wait for one); also
                ``?pool_size=`` in ``url``. ``None``: 20 on PostgreSQL (enough for a few dozen concurrent requests
                before they queue in the pool), SQLAlchemy's 5 plus 10 overflow on SQLite (one writer anyway).
                Explicit ``pool_size``/``max_overflow`` in ``engine_options`` win; a borrowed engine keeps its pool.
        """
        if (url is None) == (config is None):
            raise ValueError("SQLAlchemyServiceStore takes exactly one of 'url' or 'config'")
        if config is not None and (engine_options or pool_size is not None):
            raise ValueError("'engine_options' and 'pool_size' apply only to an engine the store creates from 'url'")
        if url is not None:
            url, pool_size = _split_pool_size(url, pool_size)
        self._url = url
        self._config = config
        self._create_schema = create_schema
        self._engine_options = dict(engine_options or {})
        if url is not None and not any(key.startswith(_POOL_OPTIONS) for key in self._engine_options):
            if pool_size is not None:
                self._engine_options.update(pool_size=pool_size, max_overflow=0)
            elif url.lower().startswith("postgresql"):
                self._engine_options.update(pool_size=DEFAULT_POSTGRES_POOL_SIZE, max_overflow=0)
        if url is not None and url.lower().startswith("sqlite"):
            # The hot paths (touch, get) are single statements on autocommit connections. On aiosqlite, switching a
            # pooled connection to autocommit and back costs four extra trips to its thread per call (the isolation
            # level both ways, and a three-step PRAGMA on return): our own SQLite engine starts in autocommit, and
            # the rarer transactions switch instead (see transaction).
            self._engine_options.setdefault("isolation_level", "AUTOCOMMIT")
        self._engine: AsyncEngine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._postgres = False
        self._writes: asyncio.Lock | None = None

    @property
    def engine(self) -> AsyncEngine:
        """The engine in use; only between :meth:`open` and :meth:`close`."""
        if self._engine is None:
            raise RuntimeError("the store is not open")
        return self._engine

    async def open(self) -> None:
        """Create (or borrow) the engine; with ``create_schema``, bring the registry's tables to the newest revision."""
        if self._engine is not None:
            return
        if self._url is not None:
            engine = create_store_engine(self._url, **self._engine_options)
        else:
            engine = cast("SQLAlchemyAsyncConfig", self._config).get_engine()
        from litestar_registry.store import StoreConfigurationError

        await prepare_engine(
            engine,
            create_schema=self._create_schema,
            owned=self._url is not None,
            refuse=lambda name: StoreConfigurationError(
                f"the SQL store supports {', '.join(sorted(SUPPORTED_DIALECTS))}, not {name!r}"
            ),
        )
        self._engine = engine
        self._loop = asyncio.get_running_loop()
        self._postgres = engine.dialect.name == "postgresql"
        self._writes = None if self._postgres else asyncio.Lock()

    def migration_target(self) -> tuple[str, dict[str, Any]]:
        """The URL (password included) and engine options that reach this store's database, for its migrations."""
        if self._url is not None:  # the pool's size aside: migrations run on a pool-less engine of their own
            # Alembic runs each migration in a transaction: not on an autocommit engine.
            options = self._engine_options.items()
            return self._url, {k: v for k, v in options if not k.startswith(_POOL_OPTIONS) and k != "isolation_level"}
        engine = cast("SQLAlchemyAsyncConfig", self._config).get_engine()
        return engine.url.render_as_string(hide_password=False), {}

    async def close(self) -> None:
        """Dispose the engine the store created; a borrowed engine stays with its owner."""
        engine, self._engine, self._loop, self._writes = self._engine, None, None, None
        if engine is not None and self._url is not None:
            await engine.dispose()

    @asynccontextmanager
    async def _engine_here(self) -> AsyncIterator[AsyncEngine]:
        """The engine for the running event loop: ours, or a short-lived one when called from a foreign loop.

        Pooled connections belong to the loop that opened them (asyncpg fails, or worse, on another). A call from
        another loop (a test client's portal thread, a helper thread with its own loop) gets a connection of its own,
        closed before the call returns. A borrowed engine is always used as is: its owner decides how it is shared.
        """
        engine = self.engine
        if self._url is None or asyncio.get_running_loop() is self._loop:
            yield engine
            return
        options = {key: value for key, value in self._engine_options.items() if not key.startswith(_POOL_OPTIONS)}
        foreign = create_store_engine(self._url, poolclass=NullPool, **options)
        try:
            yield foreign
        finally:
            await foreign.dispose()

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        """A transaction on a connection of its own."""
        async with self._engine_here() as engine, transaction(engine) as conn:
            yield conn

    @asynccontextmanager
    async def _serialized(self) -> AsyncIterator[None]:
        """On SQLite, one write at a time per store (on the store's own loop).

        SQLite has a single writer, and a writer that finds the database locked polls with sleeps of up to 100 ms;
        queueing here instead makes concurrent writes of one process fair and fast. PostgreSQL needs no such thing.
        """
        if self._writes is None or asyncio.get_running_loop() is not self._loop:
            yield
            return
        async with self._writes:
            yield

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction for the writes of several statements."""
        async with self._serialized(), self._begin() as conn:
            yield conn

    @asynccontextmanager
    async def _single(self) -> AsyncIterator[AsyncConnection]:
        """A connection in autocommit mode, for one statement: no BEGIN and COMMIT around it, one round trip."""
        async with self._engine_here() as engine, engine.connect() as conn:
            if _autocommit(engine):
                yield conn
            else:
                yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    async def create(
        self, record: ServiceRecord, history: VersionEntry, *, events: Sequence[EventDraft] = ()
    ) -> ServiceRecord:
        async with self._write() as conn:
            try:
                stored = msgspec.structs.replace(record, contact_revision=1)
                result = await conn.execute(
                    insert(_services).values(slug=record.slug, **_row(stored, 1)).returning(*_services.c)
                )
            except IntegrityError as exc:
                raise ServiceExists(f"service '{record.slug}' is already registered") from exc
            row = result.one()
            await conn.execute(insert(_versions).values(**_history_row(history)))
            if labels := label_rows(record):
                await conn.execute(insert(_labels), labels)
            await self._append(conn, events)
        return _record(row._mapping)

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
        c = _services.c
        values: dict[str, Any] = _data_row(record, expected_revision + 1)
        live: bool | ColumnElement[bool] = c.status.in_(_LIVE_VALUES)
        if rewrite.status is not None:
            values["status"] = rewrite.status.value
            live = rewrite.status in LIVE
        next_check: Any = c.next_check_us
        if rewrite.restart_at is not None:
            # The later of the stored contact and this one, computed in the row: contact never goes backwards.
            at = to_micros(rewrite.restart_at)
            seen = case((c.last_seen_us > at, c.last_seen_us), else_=literal(at, BigInteger()))
            next_check = seen + micros(record.ttl)
            values.update(
                last_seen_us=seen,
                deadline_us=next_check,
                expires_us=seen + micros(record.ttl * record.expiry_windows),
                failure_count=0,
            )
            if rewrite.clear_health:
                values["health"] = null()
        if live is True:
            values["next_check_us"] = next_check
        elif live is False:
            values["next_check_us"] = None
        else:
            values["next_check_us"] = case((live, next_check), else_=null())
        if rewrite.status is not None or rewrite.restart_at is not None:
            values["contact_revision"] = c.contact_revision + 1
        stmt = update(_services).where(c.slug == record.slug, c.revision == expected_revision)
        if rewrite.from_statuses is not None:
            stmt = stmt.where(c.status.in_(sorted(status.value for status in rewrite.from_statuses)))
        async with self._write() as conn:
            stored = (await conn.execute(stmt.values(**values).returning(*c))).first()
            if stored is None:
                found = await conn.scalar(select(c.revision).where(c.slug == record.slug))
                if found is None:
                    raise ServiceNotFound(f"service '{record.slug}' is not registered")
                raise StaleWrite(f"service '{record.slug}' changed concurrently")
            await self._relabel(conn, record)
            if history is not None:
                await conn.execute(insert(_versions).values(**_history_row(history)))
                if history_limit is not None:
                    await conn.execute(_trim_history(record.slug, history_limit))
            status = ServiceStatus(stored._mapping["status"])
            await self._append(conn, [with_status(draft, status) for draft in events])
        return _record(stored._mapping)

    async def get(self, slug: str) -> ServiceRecord | None:
        async with self._single() as conn:
            row = (await conn.execute(_GET, {"slug": slug})).first()
        return None if row is None else _record(row._mapping)

    async def find(self, query: ServiceQuery) -> Page:
        async with self._single() as conn:
            rows = (await conn.execute(self._find_statement(query))).all()
        items = [_record(row._mapping) for row in rows[: query.limit]]
        more = len(rows) > query.limit and bool(items)
        return Page(items=items, next_after=items[-1].slug if more else None)

    def _find_statement(self, query: ServiceQuery) -> Any:
        """The one ``SELECT`` of a list page: ``limit + 1`` rows in slug order, each walk stopping at the page.

        A tag filter walks the label table's ``(kind, value, slug)`` key for the tag (a capability alone, for the
        capability): each service row is then one probe of its primary key, and a capability with the tag one probe of
        the label key, so a page costs the tag's rows walked until it is full. Otherwise a status filter walks
        ``(status, slug)`` (on SQLite one walk per status, each cut off once it passes the page's last slug; PostgreSQL
        walks the primary key instead when its statistics say most rows match), and no status the primary key.
        """
        s = _services.c
        wanted = [
            (kind, value) for kind, value in (("tag", query.tag), ("capability", query.capability)) if value is not None
        ]
        statuses = None if query.statuses is None else sorted(status.value for status in query.statuses)
        stmt = select(_services).limit(query.limit + 1)
        order = s.slug
        if wanted:
            # Ordered by the driving column: SQLite's planner would otherwise walk the services in slug order and
            # probe the labels for each.
            (kind, value), *others = wanted
            first = _labels.alias("l0")
            order = first.c.slug
            stmt = stmt.select_from(first.join(_services, s.slug == first.c.slug))
            stmt = stmt.where(first.c.kind == kind, first.c.value == value)
            for kind, value in others:
                stmt = stmt.where(self._has_label(first.c.slug, kind, value))
        stmt = stmt.order_by(order)
        if statuses is not None:
            status: Any = s.status
            if wanted and not self._postgres:
                # Not through the status index: SQLite's planner (without statistics) would read every row of the
                # status and sort them all. Walked from the label, a page costs at most the label's rows.
                status = status.concat("")
            stmt = stmt.where(status.in_(statuses))
        if query.text:
            needle = query.text.casefold()
            folded = (s.slug_folded, s.name_folded, s.description_folded)
            stmt = stmt.where(or_(*(column.contains(needle, autoescape=True) for column in folded)))
        if query.after is not None:
            # On both sides of the join: PostgreSQL carries equalities across a join, not ranges, and a merge join
            # would otherwise walk the services from the first slug up to the cursor.
            stmt = stmt.where(s.slug > query.after)
            if wanted:
                stmt = stmt.where(order > query.after)
        return stmt

    def _has_label(self, slug: Any, kind: str, value: str) -> ColumnElement[bool]:
        """Whether the service ``slug`` has the label: one probe of the label table's key for each row walked.

        A correlated ``EXISTS``, kept one on PostgreSQL by ``OFFSET 0`` (it would otherwise become a join of the two
        labels, and on its estimates the planner may scan one label's rows again for every row of the other).
        """
        other = _labels.alias("l1")
        probe = select(literal(1)).where(other.c.kind == kind, other.c.value == value, other.c.slug == slug)
        if self._postgres:
            probe = probe.offset(0)
        return exists(probe)

    async def _relabel(self, conn: AsyncConnection, record: ServiceRecord) -> None:
        """Make the label rows of ``record.slug`` its tags and capabilities, in the caller's transaction.

        Only what changed is written: the labels it no longer has are deleted, the new ones inserted, and the ones it
        keeps (most writes change no label) are left alone.
        """
        rows = label_rows(record)
        kept = [(row["kind"], row["value"]) for row in rows]
        await conn.execute(
            delete(_labels).where(_labels.c.slug == record.slug, tuple_(_labels.c.kind, _labels.c.value).not_in(kept))
        )
        if rows:
            upsert = (postgres_insert if self._postgres else sqlite_insert)(_labels).on_conflict_do_nothing()
            await conn.execute(upsert, rows)

    async def delete(
        self, slug: str, *, expected_revision: int | None = None, events: Sequence[EventDraft] = ()
    ) -> bool:
        stmt = delete(_services).where(_services.c.slug == slug)
        if expected_revision is not None:
            stmt = stmt.where(_services.c.revision == expected_revision)
        async with self._write() as conn:
            if (await conn.execute(stmt)).rowcount == 0:
                return False
            # Not left to the foreign key's ON DELETE CASCADE: SQLite enforces it only on connections that turned
            # PRAGMA foreign_keys on, which a host's borrowed engine need not have done.
            await conn.execute(delete(_versions).where(_versions.c.slug == slug))
            await conn.execute(delete(_labels).where(_labels.c.slug == slug))
            await self._append(conn, events)
        return True

    async def touch_logged(self, slug: str, contact: Contact) -> Touched:
        params: dict[str, Any] = {
            "b_slug": slug,
            "b_at": to_micros(contact.at),
            "b_status": contact.status.value,
            "b_statuses": sorted(status.value for status in contact.from_statuses),
        }
        if contact.health is not None:
            params["b_health"] = msgspec.to_builtins(contact.health)
        if contact.account is not None:
            params["b_account"] = contact.account
        health, account = contact.health is not None, contact.account is not None
        async with self._serialized(), self._single() as conn:
            row = (await conn.execute(_TOUCH[health, account, True], params)).first()
        if row is not None:  # the steady state: the status stays, nothing to log, one round trip
            return Touched(_record(row._mapping), None)
        # The status moves (or nothing matches): read the status it replaces under the row lock, apply the contact
        # and append its transition in one transaction.
        async with self._write() as conn:
            await self._hold_writer(conn)
            before: str | None = await conn.scalar(_STATUS_FOR_UPDATE, {"slug": slug})
            if before is None:
                return Touched(None, None)
            row = (await conn.execute(_TOUCH[health, account, False], params)).first()
            if row is None:
                return Touched(None, None)
            stored = _record(row._mapping)
            previous = ServiceStatus(before)
            topic = contact_topic(previous, stored.status)
            if topic is not None:
                await self._append(conn, [service_draft(topic, stored, contact.at, previous_status=previous)])
        return Touched(stored, topic)

    async def version_page(self, slug: str, *, after: int | None = None, limit: int | None = None) -> VersionPage:
        v = _versions.c
        stmt = select(v.id, v.slug, v.version, v.previous_version, v.recorded_at).where(v.slug == slug).order_by(v.id)
        if after is not None:
            stmt = stmt.where(v.id > after)
        if limit is not None:
            stmt = stmt.limit(limit + 1)
        async with self._single() as conn:
            rows = (await conn.execute(stmt)).all()
        more = limit is not None and len(rows) > limit
        rows = rows[:limit] if more else rows
        items = [
            VersionEntry(
                slug=row.slug, version=row.version, previous_version=row.previous_version, recorded_at=row.recorded_at
            )
            for row in rows
        ]
        return VersionPage(items=items, next_after=rows[-1].id if more else None)

    async def sweep_due(
        self, now: datetime, advance: Advance, *, limit: int = 100
    ) -> list[tuple[ServiceRecord, ServiceRecord]]:
        # Read what is due without locking it, decide in Python, write the batch back in one conditional statement
        # (``_sweep_statement``). Of several sweepers reading the same rows, the contact revision lets one win each.
        # A row the write did not claim (changed since the read, or held by another transaction at that instant) is
        # read again, so each call still fills its ``limit`` when that much is due; a row held for longer is left to
        # a later sweep after a few short retries.
        changed: list[tuple[ServiceRecord, ServiceRecord]] = []
        unchanged: set[tuple[str, int]] = set()
        """Rows ``advance`` leaves as they are, as read in this call: nothing to write while they stay so."""
        idle = 0
        now_us = to_micros(now)
        while len(changed) < limit and idle < _SWEEP_RETRIES:
            wanted = limit - len(changed)
            async with self._single() as conn:
                rows = (await conn.execute(_DUE, {"now": now_us, "limit": wanted + len(unchanged)})).all()
            plans: list[tuple[ServiceRecord, ServiceRecord]] = []
            for row in rows:
                before = _record(row._mapping)
                if (before.slug, before.contact_revision) in unchanged:
                    continue
                after = advance(before, now)
                if after == before:
                    unchanged.add((before.slug, before.contact_revision))
                elif len(plans) < wanted:
                    plans.append((before, after))
            if not plans:
                break
            stored = await self._sweep_write(plans, now)
            changed += [(before, stored[before.slug]) for before, _ in plans if before.slug in stored]
            if len(stored) == len(plans):
                if len(rows) < wanted + len(unchanged):
                    break  # everything due was read, and written
                idle = 0
            else:
                idle = 0 if stored else idle + 1
                await asyncio.sleep(_SWEEP_BACKOFF * idle)
        return changed

    async def _sweep_write(
        self, plans: Sequence[tuple[ServiceRecord, ServiceRecord]], now: datetime
    ) -> dict[str, ServiceRecord]:
        """Write a sweep's batch (:data:`_SWEEP`) and the events of the rows it claimed; return those rows by slug.

        A batch whose transitions announce nothing (another missed window of a degraded service) is one statement in
        autocommit mode, as before the log; otherwise the statement and the events share a transaction.
        """
        params = _sweep_params(plans, postgres=self._postgres)
        if not any(sweep_topic(before.status, after.status) for before, after in plans):
            async with self._serialized(), self._single() as conn:
                result = await conn.execute(_SWEEP[self._postgres], params)
                return {row.slug: _record(row._mapping) for row in result}
        async with self._write() as conn:
            await self._hold_writer(conn)
            result = await conn.execute(_SWEEP[self._postgres], params)
            stored = {row.slug: _record(row._mapping) for row in result}
            drafts = []
            for before, _ in plans:
                after = stored.get(before.slug)
                topic = None if after is None else sweep_topic(before.status, after.status)
                if topic is not None:
                    drafts.append(
                        service_draft(topic, cast("ServiceRecord", after), now, previous_status=before.status)
                    )
            await self._append(conn, drafts)
        return stored

    async def _hold_writer(self, conn: AsyncConnection) -> None:
        """On SQLite, open the transaction with the write lock before a first statement Python would run outside it."""
        if not self._postgres:
            await conn.execute(_SQLITE_WRITER)

    async def _append(self, conn: AsyncConnection, drafts: Sequence[EventDraft]) -> None:
        """Append ``drafts`` to the change log in the caller's transaction (:func:`append_events`)."""
        await append_events(conn, drafts)

    async def read_events(
        self,
        after: int = 0,
        *,
        limit: int = 100,
        topics: Collection[Topic] | None = None,
        subject: str | None = None,
    ) -> EventPage:
        params: dict[str, Any] = {"b_after": min(max(after, -1), _INT64_MAX), "b_limit": min(limit, _INT32_MAX)}
        if topics is not None:
            params["b_topics"] = sorted(Topic(topic).value for topic in topics)
        if subject is not None:
            params["b_subject"] = subject
        # Nothing can match a subject with NUL (no slug or workflow id has one), which PostgreSQL refuses to compare.
        empty = limit <= 0 or after >= _INT64_MAX or (subject is not None and "\x00" in subject)
        async with self._single() as conn:
            rows = [] if empty else (await conn.execute(_READ[topics is not None, subject is not None], params)).all()
            last = await conn.scalar(_LAST_ID)  # read after the events: never below the highest id among them
        items = [
            ChangeEvent(
                id=row.id,
                topic=Topic(row.topic),
                occurred_at=row.occurred_at,
                subject=row.subject,
                data=row.data,
                tenant=row.tenant,
            )
            for row in rows
        ]
        return EventPage(items=items, last_id=last or 0)

    async def trim_events(self, *, keep_after: int | None = None, older_than: datetime | None = None) -> int:
        dropped = 0
        async with self._write() as conn:
            if keep_after is not None:
                ids = _events.c.id <= min(keep_after, _INT64_MAX)
                dropped += (await conn.execute(delete(_events).where(ids))).rowcount
            if older_than is not None:
                dropped += (await conn.execute(delete(_events).where(_events.c.occurred_at < older_than))).rowcount
        return dropped

    async def _clear_for_tests(self) -> None:
        """Delete every row of the registry's tables (the test database is shared between tests).

        The counter goes first: its row lock makes a concurrent append (a background task of another app on the same
        database) wait until the events are gone too, or finish before they go; the other order could leave an event
        whose id the emptied counter hands out again.
        """
        async with self._write() as conn:
            await conn.execute(delete(_counter))
            await conn.execute(delete(_events))
            await conn.execute(delete(_versions))
            await conn.execute(delete(_labels))
            await conn.execute(delete(_services))


def _trim_history(slug: str, limit: int) -> Any:
    """Delete the entries of ``slug`` older than its newest ``limit`` (nothing when it has no more than that)."""
    v = _versions.c
    oldest_kept = select(v.id).where(v.slug == slug).order_by(v.id.desc()).offset(limit - 1).limit(1).scalar_subquery()
    return delete(_versions).where(v.slug == slug, v.id < oldest_kept)


def _history_row(entry: VersionEntry) -> dict[str, Any]:
    return {
        "slug": entry.slug,
        "version": entry.version,
        "previous_version": entry.previous_version,
        "recorded_at": entry.recorded_at,
    }
