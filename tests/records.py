"""Test data for the store contract: records whose times are consistent with their TTL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from litestar_registry.core.models import Entrypoint, ServiceRecord, ServiceStatus, VersionEntry

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def make_record(
    slug: str = "svc", *, at: datetime = T0, ttl: float = 30, windows: int = 3, **fields: Any
) -> ServiceRecord:
    """A live record last seen at ``at``; any field can be overridden."""
    deadline = at + timedelta(seconds=ttl)
    values: dict[str, Any] = {
        "slug": slug,
        "name": slug.replace("-", " ").title(),
        "version": "1.0.0",
        "status": ServiceStatus.ACTIVE,
        "registered_at": at,
        "updated_at": at,
        "last_seen_at": at,
        "ttl_seconds": ttl,
        "expiry_windows": windows,
        "deadline_at": deadline,
        "expires_at": at + timedelta(seconds=ttl * windows),
        "next_check_at": deadline,
        "endpoints": (Entrypoint(name="api", url=f"http://{slug}:8080/api"),),
        "capabilities": ("search",),
        "tags": ("core",),
        "metadata": {"team": "blue", "nested": {"n": 1}},
    }
    values.update(fields)
    return ServiceRecord(**values)


def first_version(record: ServiceRecord) -> VersionEntry:
    return VersionEntry(
        slug=record.slug, version=record.version, previous_version=None, recorded_at=record.registered_at
    )


def insert_rows(conn: Connection, *records: ServiceRecord, omit: tuple[str, ...] = ("contact_revision",)) -> None:
    """Insert ``records`` (revision 1) and their first history entries with plain SQL, as a store at an older schema
    revision would have: ``omit`` names the columns that schema does not have yet."""
    from sqlalchemy import insert

    from litestar_registry.store.sqlalchemy.models import ServiceModel, ServiceVersionModel
    from litestar_registry.store.sqlalchemy.store import _history_row, _row

    for record in records:
        row = {key: value for key, value in _row(record, record.revision).items() if key not in omit}
        conn.execute(insert(ServiceModel.__table__).values(slug=record.slug, **row))
        conn.execute(insert(ServiceVersionModel.__table__).values(**_history_row(first_version(record))))
