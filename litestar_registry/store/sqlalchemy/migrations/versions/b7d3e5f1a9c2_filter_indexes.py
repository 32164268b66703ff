"""filter indexes: list pages filtered on status, tag or capability read an index instead of the whole table

``(status, slug)`` on every dialect serves the status filter in slug order. On PostgreSQL, GIN indexes
(``jsonb_path_ops``) on ``tags`` and ``capabilities`` serve the ``@>`` containment the tag and capability filters are
written as; SQLite cannot index the elements of a JSON array, so it gets only the status index.

Revision ID: b7d3e5f1a9c2
Revises: 9e4b2f6a7c1d
Create Date: 2026-12-10 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "b7d3e5f1a9c2"
down_revision: str | Sequence[str] | None = "9e4b2f6a7c1d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SERVICES = "registry_services"


def upgrade() -> None:
    """Add the status index, and on PostgreSQL the GIN indexes on the JSONB arrays."""
    op.create_index(f"ix_{SERVICES}_status", SERVICES, ["status", "slug"])
    if op.get_context().dialect.name == "postgresql":
        for column in ("tags", "capabilities"):
            op.create_index(
                f"ix_{SERVICES}_{column}",
                SERVICES,
                [column],
                postgresql_using="gin",
                postgresql_ops={column: "jsonb_path_ops"},
            )


def downgrade() -> None:
    """Drop the indexes this revision added."""
    if op.get_context().dialect.name == "postgresql":
        for column in ("capabilities", "tags"):
            op.drop_index(f"ix_{SERVICES}_{column}", table_name=SERVICES)
    op.drop_index(f"ix_{SERVICES}_status", table_name=SERVICES)
