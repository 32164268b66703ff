"""provisioning: the read model of provisioning workflows (workflows, steps, executions, callback token hashes)

DBOS keeps the durable execution state in its own tables (its own SQLite file, or its own schema on PostgreSQL);
these are the indexed, tenant-scoped projection the provisioning routes read. Tokens are kept as SHA-256 hashes and
credentials sealed with Fernet, never in plain text.

Revision ID: 9e4b2f6a7c1d
Revises: 5c0e7a1d2b3f
Create Date: 2026-12-09 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9e4b2f6a7c1d"
down_revision: str | Sequence[str] | None = "5c0e7a1d2b3f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORKFLOWS = "registry_provisioning_workflows"
STEPS = "registry_provisioning_steps"
EXECUTIONS = "registry_provisioning_executions"
TOKENS = "registry_provisioning_tokens"


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON(none_as_null=True)


def _slug() -> sa.types.TypeEngine[str]:
    return sa.String().with_variant(sa.String(collation="C"), "postgresql")


def _at(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the four tables and the indexes the reads scan."""
    op.create_table(
        WORKFLOWS,
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(), nullable=False),
        sa.Column("service_slug", _slug(), nullable=False),
        sa.Column("definition", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("inputs", _json(), nullable=False),
        sa.Column("run", sa.Integer(), nullable=False),
        sa.Column("dbos_workflow_id", sa.String(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        _at("created_at", False),
        _at("updated_at", False),
        _at("started_at", True),
        _at("finished_at", True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=f"pk_{WORKFLOWS}"),
    )
    op.create_index(f"ix_{WORKFLOWS}_tenant", WORKFLOWS, ["tenant", "id"])
    op.create_index(f"ix_{WORKFLOWS}_tenant_status", WORKFLOWS, ["tenant", "status", "id"])
    op.create_index(f"ix_{WORKFLOWS}_tenant_service", WORKFLOWS, ["tenant", "service_slug", "id"])
    op.create_index(f"ix_{WORKFLOWS}_service_status", WORKFLOWS, ["service_slug", "status"])
    op.create_index(f"ix_{WORKFLOWS}_status", WORKFLOWS, ["status", "id"])

    op.create_table(
        STEPS,
        sa.Column("workflow_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("depends_on", _json(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("started_at", True),
        _at("finished_at", True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("outputs", _json(), nullable=True),
        sa.Column("completed_seq", sa.Integer(), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["workflow_id"], [f"{WORKFLOWS}.id"], name=f"fk_{STEPS}_workflow", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workflow_id", "name", name=f"pk_{STEPS}"),
    )

    op.create_table(
        EXECUTIONS,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("workflow_id", sa.String(length=36), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("run", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("executor_id", sa.String(), nullable=False),
        _at("started_at", False),
        _at("finished_at", True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            [f"{WORKFLOWS}.id"],
            name=f"fk_{EXECUTIONS}_workflow",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{EXECUTIONS}"),
    )
    op.create_index(f"ix_{EXECUTIONS}_workflow", EXECUTIONS, ["workflow_id", "step", "id"])

    op.create_table(
        TOKENS,
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(), nullable=False),
        sa.Column("workflow_id", sa.String(length=36), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("run", sa.Integer(), nullable=False),
        sa.Column("dbos_workflow_id", sa.String(), nullable=False),
        _at("issued_at", False),
        _at("expires_at", False),
        _at("used_at", True),
        sa.Column("payload", _json(), nullable=True),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["workflow_id"], [f"{WORKFLOWS}.id"], name=f"fk_{TOKENS}_workflow", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash", name=f"pk_{TOKENS}"),
    )
    op.create_index(f"ix_{TOKENS}_step", TOKENS, ["workflow_id", "step"])
    op.create_index(f"ix_{TOKENS}_undelivered", TOKENS, ["delivered", "used_at"])


def downgrade() -> None:
    """Drop the four tables (DBOS's own tables are not ours to drop)."""
    op.drop_index(f"ix_{TOKENS}_undelivered", table_name=TOKENS)
    op.drop_index(f"ix_{TOKENS}_step", table_name=TOKENS)
    op.drop_table(TOKENS)
    op.drop_index(f"ix_{EXECUTIONS}_workflow", table_name=EXECUTIONS)
    op.drop_table(EXECUTIONS)
    op.drop_table(STEPS)
    for index in ("status", "service_status", "tenant_service", "tenant_status", "tenant"):
        op.drop_index(f"ix_{WORKFLOWS}_{index}", table_name=WORKFLOWS)
    op.drop_table(WORKFLOWS)
