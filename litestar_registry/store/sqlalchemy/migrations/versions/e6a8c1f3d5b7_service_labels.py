"""service labels: tag and capability filters walk an index in slug order, on every dialect

``registry_service_labels`` holds one row ``(kind, value, slug)`` per tag and per capability of each service, keyed in
that order: a filtered list page reads the slugs of one label in order and stops at the page, and a label nobody has
costs one index probe. The GIN indexes on the JSONB arrays (PostgreSQL only) served containment, which hands every
match over unordered to be sorted; nothing reads them any more, so they go. The upgrade fills the table from the
``tags`` and ``capabilities`` of the rows already there (duplicates within one array once).

Revision ID: e6a8c1f3d5b7
Revises: d5f9b3a7c2e4
Create Date: 2026-12-01 18:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e6a8c1f3d5b7"
down_revision: str | Sequence[str] | None = "d5f9b3a7c2e4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SERVICES = "registry_services"
LABELS = "registry_service_labels"
COLUMNS = {"tag": "tags", "capability": "capabilities"}


def _slug() -> sa.types.TypeEngine[str]:
    return sa.String().with_variant(sa.String(collation="C"), "postgresql")


def upgrade() -> None:
    """Create the label table, fill it from the JSON arrays, and drop the GIN indexes."""
    postgres = op.get_context().dialect.name == "postgresql"
    op.create_table(
        LABELS,
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", _slug(), nullable=False),
        sa.Column("slug", _slug(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "value", "slug", name=f"pk_{LABELS}"),
        sqlite_with_rowid=False,
    )
    op.create_index(f"ix_{LABELS}_slug", LABELS, ["slug"])
    elements = "jsonb_array_elements_text({})" if postgres else "json_each({})"
    element = "e" if postgres else "e.value"
    for kind, column in COLUMNS.items():
        op.execute(
            f"INSERT INTO {LABELS} (kind, value, slug) "  # noqa: S608 - constants only
            f"SELECT DISTINCT '{kind}', {element}, s.slug FROM {SERVICES} AS s, {elements.format('s.' + column)} AS e"
        )
    if postgres:
        for column in COLUMNS.values():
            op.drop_index(f"ix_{SERVICES}_{column}", table_name=SERVICES)
        # A bulk fill leaves the planner without statistics until autoanalyze comes round: give it them now.
        op.execute(f"ANALYZE {LABELS}")


def downgrade() -> None:
    """Restore the GIN indexes (PostgreSQL) and drop the label table."""
    if op.get_context().dialect.name == "postgresql":
        for column in COLUMNS.values():
            op.create_index(
                f"ix_{SERVICES}_{column}",
                SERVICES,
                [column],
                postgresql_using="gin",
                postgresql_ops={column: "jsonb_path_ops"},
            )
    op.drop_index(f"ix_{LABELS}_slug", table_name=LABELS)
    op.drop_table(LABELS)
