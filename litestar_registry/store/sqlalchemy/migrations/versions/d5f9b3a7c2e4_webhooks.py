"""webhooks: subscriptions, the delivery of each event to each subscription, every attempt, and the relay's cursor

DBOS keeps the durable execution state of deliveries in its own tables; these are what the admin routes read and
what the delivery workflow decides on. Subscription secrets are kept sealed with Fernet, never in plain text.

Revision ID: d5f9b3a7c2e4
Revises: c4e8a2f6b1d3
Create Date: 2026-12-01 15:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d5f9b3a7c2e4"
down_revision: str | Sequence[str] | None = "c4e8a2f6b1d3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUBSCRIPTIONS = "registry_webhook_subscriptions"
DELIVERIES = "registry_webhook_deliveries"
ATTEMPTS = "registry_webhook_attempts"
CURSORS = "registry_webhook_cursors"


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON(none_as_null=True)


def _at(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the four tables and the indexes the reads scan."""
    op.create_table(
        SUBSCRIPTIONS,
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("topics", _json(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("secret", _json(), nullable=False),
        sa.Column("previous_secrets", _json(), nullable=False),
        sa.Column("start_after", sa.BigInteger(), nullable=False),
        _at("created_at", False),
        _at("updated_at", False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{SUBSCRIPTIONS}"),
    )
    op.create_index(f"ix_{SUBSCRIPTIONS}_enabled", SUBSCRIPTIONS, ["enabled", "id"])

    op.create_table(
        DELIVERIES,
        sa.Column("webhook_id", sa.String(length=64), nullable=False),
        sa.Column("subscription_id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("run", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("created_at", False),
        _at("updated_at", False),
        _at("next_attempt_at", True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _at("finished_at", True),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            [f"{SUBSCRIPTIONS}.id"],
            name=f"fk_{DELIVERIES}_subscription",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("webhook_id", name=f"pk_{DELIVERIES}"),
    )
    op.create_index(f"ix_{DELIVERIES}_subscription", DELIVERIES, ["subscription_id", "event_id"])
    op.create_index(f"ix_{DELIVERIES}_subscription_state", DELIVERIES, ["subscription_id", "state", "event_id"])
    op.create_index(f"ix_{DELIVERIES}_state", DELIVERIES, ["state", "event_id"])

    op.create_table(
        ATTEMPTS,
        sa.Column("webhook_id", sa.String(length=64), nullable=False),
        sa.Column("run", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        _at("started_at", False),
        sa.Column("executor_id", sa.String(), nullable=False),
        _at("finished_at", True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("response_excerpt", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["webhook_id"], [f"{DELIVERIES}.webhook_id"], name=f"fk_{ATTEMPTS}_delivery", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("webhook_id", "run", "attempt", name=f"pk_{ATTEMPTS}"),
    )

    op.create_table(
        CURSORS,
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=f"pk_{CURSORS}"),
    )


def downgrade() -> None:
    """Drop the four tables (DBOS's own tables are not ours to drop)."""
    op.drop_table(CURSORS)
    op.drop_table(ATTEMPTS)
    for index in ("state", "subscription_state", "subscription"):
        op.drop_index(f"ix_{DELIVERIES}_{index}", table_name=DELIVERIES)
    op.drop_table(DELIVERIES)
    op.drop_index(f"ix_{SUBSCRIPTIONS}_enabled", table_name=SUBSCRIPTIONS)
    op.drop_table(SUBSCRIPTIONS)
