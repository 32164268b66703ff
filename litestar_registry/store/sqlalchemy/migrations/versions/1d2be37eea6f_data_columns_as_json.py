"""data columns as json on PostgreSQL: kept as sent, so an identical re-registration is unchanged

JSONB normalizes what it stores: ``1e300`` comes back as the integer ``10**300`` (a different number) and keys are
reordered, so a PUT of the very same registration compared unequal and wrote a new revision every time. ``json``
keeps the text as sent. ``tags`` and ``capabilities`` stay JSONB: the list filters test them by containment. SQLite
has one JSON type, so it has nothing to change.

Revision ID: 1d2be37eea6f
Revises: 3f77ae93f23e
Create Date: 2026-12-01 08:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "1d2be37eea6f"
down_revision: str | Sequence[str] | None = "3f77ae93f23e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("endpoints", "metadata", "owner", "health", "extensions")


def _retype(to: sa.types.TypeEngine[object], cast: str) -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.alter_column("registry_services", column, type_=to, postgresql_using=f'"{column}"::{cast}')


def upgrade() -> None:
    """jsonb to json for the columns handed back verbatim."""
    _retype(sa.JSON(none_as_null=True), "json")


def downgrade() -> None:
    """json back to jsonb."""
    _retype(postgresql.JSONB(none_as_null=True), "jsonb")
