"""contact_revision: contact and sweeps get a counter of their own, apart from the data revision

Every ping bumped the one ``revision`` that re-registration, deregistration and approval compare-and-set on, so
contact made data writes fail. Contact and sweeps now count in ``contact_revision`` (what a sweep claims a row on);
``revision`` counts data writes only. Existing rows start at 1 (the column's server default, which the model declares
too: SQLite cannot drop a default without rebuilding the table, and plain ``ADD COLUMN`` keeps ``--sql`` mode working).

Revision ID: 5c0e7a1d2b3f
Revises: 1d2be37eea6f
Create Date: 2026-12-08 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c0e7a1d2b3f"
down_revision: str | Sequence[str] | None = "1d2be37eea6f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``contact_revision``, 1 for existing rows."""
    op.add_column(
        "registry_services",
        sa.Column("contact_revision", sa.Integer(), nullable=False, server_default=sa.text("1")),
    )


def downgrade() -> None:
    """Drop ``contact_revision``."""
    op.drop_column("registry_services", "contact_revision")
