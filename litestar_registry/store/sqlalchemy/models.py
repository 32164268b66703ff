"""The registry's tables, on their own metadata (bind key ``registry``) so the host's ``create_all`` never sees them.

Instants that the store computes with (``last_seen``, ``deadline``, ``expires``, ``next_check``) are integer
microseconds since the Unix epoch: ``touch`` adds the TTL to them inside one ``UPDATE`` on every dialect, and integers
are exact where float seconds are not (``at + ttl`` in float differs from the datetime sum by a microsecond for
fractional TTLs). ``ttl_us`` is the TTL rounded to microseconds exactly as ``timedelta(seconds=ttl)`` rounds it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from advanced_alchemy.base import metadata_registry
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, BigInteger, Double, ForeignKey, Index, Integer, MetaData, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = (
    "BIND_KEY",
    "TABLE_PREFIX",
    "EventCounterModel",
    "EventModel",
    "RegistryBase",
    "ServiceLabelModel",
    "ServiceModel",
    "ServiceVersionModel",
    "metadata",
)

BIND_KEY = "registry"
"""advanced-alchemy bind key of our metadata: a host config with this ``bind_key`` sees our tables, no other does."""

TABLE_PREFIX = "registry_"
"""Every table (and the Alembic version table) of the registry starts with this."""

metadata: MetaData = metadata_registry.get(BIND_KEY)
"""Our tables only; separate from advanced-alchemy's default metadata, which the host's models use."""

Slug = String().with_variant(String(collation="C"), "postgresql")
"""Slugs sort by code point on every backend (PostgreSQL's default collation may sort ``a-c`` after ``ab``)."""

JsonB = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
"""JSON, as JSONB on PostgreSQL (the tag and capability arrays, which the list filters once tested by containment, and
still may in a host's own queries); ``None`` is SQL NULL.
(advanced-alchemy 1.12's ``JsonB`` carries an Oracle variant that fails to attach to a table under SQLAlchemy 2.1, so
we spell out the two dialects we support.)"""

Json = JSON(none_as_null=True)
"""JSON kept as sent, also on PostgreSQL (``json``, not ``jsonb``), for data handed back verbatim: JSONB normalizes
numbers (``1e300`` comes back as the integer ``10**300``) and reorders keys, so an identical re-registration would
look changed."""


class RegistryBase(DeclarativeBase):
    """Declarative base of the registry's tables: its own mapper registry, and the ``registry`` bind key's metadata."""

    __abstract__ = True
    __bind_key__ = BIND_KEY
    metadata = metadata


class ServiceModel(RegistryBase):
    """One row per service slug, whatever its status."""

    __tablename__ = f"{TABLE_PREFIX}services"
    __table_args__ = (
        # The sweep reads what is due, earliest first: a range scan on this index, never the whole table.
        Index(f"ix_{TABLE_PREFIX}services_next_check", "next_check_us", "slug"),
        # The status filter of a list page, in slug order (every dialect).
        Index(f"ix_{TABLE_PREFIX}services_status", "status", "slug"),
    )

    slug: Mapped[str] = mapped_column(Slug, primary_key=True)
    name: Mapped[str] = mapped_column(String())
    version: Mapped[str] = mapped_column(String())
    status: Mapped[str] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(Text())
    base_url: Mapped[str | None] = mapped_column(Text())
    health_url: Mapped[str | None] = mapped_column(Text())
    documentation_url: Mapped[str | None] = mapped_column(Text())
    account: Mapped[str | None] = mapped_column(String())
    registered_at: Mapped[datetime] = mapped_column(DateTimeUTC())
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC())
    ttl_seconds: Mapped[float] = mapped_column(Double())
    ttl_us: Mapped[int] = mapped_column(BigInteger())
    expiry_windows: Mapped[int] = mapped_column(Integer())
    failure_count: Mapped[int] = mapped_column(Integer())
    last_seen_us: Mapped[int] = mapped_column(BigInteger())
    deadline_us: Mapped[int] = mapped_column(BigInteger())
    expires_us: Mapped[int] = mapped_column(BigInteger())
    next_check_us: Mapped[int | None] = mapped_column(BigInteger())
    endpoints: Mapped[list[Any]] = mapped_column(Json)
    capabilities: Mapped[list[str]] = mapped_column(JsonB)
    tags: Mapped[list[str]] = mapped_column(JsonB)
    service_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", Json)
    owner: Mapped[dict[str, Any] | None] = mapped_column(Json)
    health: Mapped[dict[str, Any] | None] = mapped_column(Json)
    extensions: Mapped[dict[str, Any]] = mapped_column(Json)
    # Case-folded copies of slug, name and description: the text filter matches exactly as ``str.casefold`` does,
    # whatever the database's collation or ``lower()`` make of non-ASCII text.
    slug_folded: Mapped[str] = mapped_column(Text())
    name_folded: Mapped[str] = mapped_column(Text())
    description_folded: Mapped[str] = mapped_column(Text())
    revision: Mapped[int] = mapped_column(Integer())
    """Data revision: what data writes compare-and-set on; contact and sweeps never move it."""
    contact_revision: Mapped[int] = mapped_column(Integer(), server_default=text("1"))
    """Grows with every write of the status or the contact columns: what a sweep claims a row on. (The server default
    is for the rows that existed before the column did; the store always writes it.)"""


LABEL_KINDS = ("tag", "capability")
"""The values of :attr:`ServiceLabelModel.kind`."""


class ServiceLabelModel(RegistryBase):
    """One row per tag and per capability of a service: the index the list filters walk in slug order.

    The primary key ``(kind, value, slug)`` holds the slugs of one label in order, so a filtered page reads its
    matches in slug order and stops at the page (no match at all: one index probe), on every dialect; JSON array
    elements cannot be indexed in that order (SQLite cannot index them at all, and a GIN index hands PostgreSQL every
    match unordered). The ``tags`` and ``capabilities`` columns of the service stay what records are built from; the
    store writes these rows in the transaction of every write that changes them.
    """

    __tablename__ = f"{TABLE_PREFIX}service_labels"
    __table_args__ = (
        # Rewriting or deleting a service's labels finds them by slug.
        Index(f"ix_{TABLE_PREFIX}service_labels_slug", "slug"),
        # The primary key is the table: no rowid b-tree beside it on SQLite.
        {"sqlite_with_rowid": False},
    )

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    """``tag`` or ``capability``."""
    value: Mapped[str] = mapped_column(Slug, primary_key=True)
    slug: Mapped[str] = mapped_column(Slug, primary_key=True)


class ServiceVersionModel(RegistryBase):
    """One line of a service's version history; the surrogate ``id`` keeps the order of appends."""

    __tablename__ = f"{TABLE_PREFIX}service_versions"
    __table_args__ = (Index(f"ix_{TABLE_PREFIX}service_versions_slug", "slug", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    slug: Mapped[str] = mapped_column(Slug, ForeignKey(f"{TABLE_PREFIX}services.slug", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String())
    previous_version: Mapped[str | None] = mapped_column(String())
    recorded_at: Mapped[datetime] = mapped_column(DateTimeUTC())


class EventModel(RegistryBase):
    """One entry of the change log.

    ``id`` comes from :class:`EventCounterModel` in the writing transaction, not from a sequence: see the store's
    ``append_events`` for why that orders ids by commit.
    """

    __tablename__ = f"{TABLE_PREFIX}events"
    __table_args__ = (
        # Retention by age deletes a range of this index, never scans the table.
        Index(f"ix_{TABLE_PREFIX}events_occurred_at", "occurred_at"),
        # A reader that follows one service reads its events after a cursor: a range of this index.
        Index(f"ix_{TABLE_PREFIX}events_subject", "subject", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False
    )
    topic: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(DateTimeUTC())
    subject: Mapped[str] = mapped_column(String())
    """The service slug, or the workflow id."""
    tenant: Mapped[str | None] = mapped_column(String())
    data: Mapped[dict[str, Any]] = mapped_column(Json)
    """The topic's payload, kept as written."""


class EventCounterModel(RegistryBase):
    """One row (``id`` 1): the highest event id ever handed out. Trimming the log never lowers it."""

    __tablename__ = f"{TABLE_PREFIX}event_counter"

    id: Mapped[int] = mapped_column(Integer(), primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger())
