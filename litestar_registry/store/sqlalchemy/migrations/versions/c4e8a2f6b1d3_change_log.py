"""change log: every write appends its events to registry_events, numbered by registry_event_counter

``registry_events`` holds the log (the id is the feed's cursor), indexed on ``occurred_at`` for retention by age and on
``(subject, id)`` for readers that follow one service. ``registry_event_counter`` holds one row, the highest id handed
out; the store creates it with the first event, so there is nothing to seed here.

Revision ID: c4e8a2f6b1d3
Revises: b7d3e5f1a9c2
Create Date: 2026-12-20 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4e8a2f6b1d3"
down_revision: str | Sequence[str] | None = "b7d3e5f1a9c2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENTS = "registry_events"
COUNTER = "registry_event_counter"


def upgrade() -> None:
    """Create the log and its counter."""
    op.create_table(
        EVENTS,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("tenant", sa.String(), nullable=True),
        sa.Column("data", sa.JSON(none_as_null=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{EVENTS}"),
    )
    op.create_index(f"ix_{EVENTS}_occurred_at", EVENTS, ["occurred_at"])
    op.create_index(f"ix_{EVENTS}_subject", EVENTS, ["subject", "id"])
    op.create_table(
        COUNTER,
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{COUNTER}"),
    )


def downgrade() -> None:
    """Drop the log and its counter (the events go with them)."""
    op.drop_table(COUNTER)
    op.drop_index(f"ix_{EVENTS}_subject", table_name=EVENTS)
    op.drop_index(f"ix_{EVENTS}_occurred_at", table_name=EVENTS)
    op.drop_table(EVENTS)
