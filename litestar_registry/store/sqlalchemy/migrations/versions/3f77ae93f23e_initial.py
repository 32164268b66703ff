"""initial: services and their version history

Revision ID: 3f77ae93f23e
Revises:
Create Date: 2026-11-22 08:14:29.104838
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "3f77ae93f23e"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def _slug() -> sa.types.TypeEngine[str]:
    return sa.String().with_variant(sa.String(collation="C"), "postgresql")


def upgrade() -> None:
    """Create the services table (with its sweep index) and the version history table."""
    op.create_table(
        "registry_services",
        sa.Column("slug", _slug(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("base_url", sa.Text(), nullable=True),
        sa.Column("health_url", sa.Text(), nullable=True),
        sa.Column("documentation_url", sa.Text(), nullable=True),
        sa.Column("account", sa.String(), nullable=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ttl_seconds", sa.Double(), nullable=False),
        sa.Column("ttl_us", sa.BigInteger(), nullable=False),
        sa.Column("expiry_windows", sa.Integer(), nullable=False),
        sa.Column("failure_count", sa.Integer(), nullable=False),
        sa.Column("last_seen_us", sa.BigInteger(), nullable=False),
        sa.Column("deadline_us", sa.BigInteger(), nullable=False),
        sa.Column("expires_us", sa.BigInteger(), nullable=False),
        sa.Column("next_check_us", sa.BigInteger(), nullable=True),
        sa.Column("endpoints", _json(), nullable=False),
        sa.Column("capabilities", _json(), nullable=False),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("metadata", _json(), nullable=False),
        sa.Column("owner", _json(), nullable=True),
        sa.Column("health", _json(), nullable=True),
        sa.Column("extensions", _json(), nullable=False),
        sa.Column("slug_folded", sa.Text(), nullable=False),
        sa.Column("name_folded", sa.Text(), nullable=False),
        sa.Column("description_folded", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("slug", name="pk_registry_services"),
    )
    op.create_index("ix_registry_services_next_check", "registry_services", ["next_check_us", "slug"])
    op.create_table(
        "registry_service_versions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("slug", _slug(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("previous_version", sa.String(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["slug"],
            ["registry_services.slug"],
            name="fk_registry_service_versions_slug_registry_services",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_registry_service_versions"),
    )
    op.create_index("ix_registry_service_versions_slug", "registry_service_versions", ["slug", "id"])


def downgrade() -> None:
    """Drop both tables."""
    op.drop_index("ix_registry_service_versions_slug", table_name="registry_service_versions")
    op.drop_table("registry_service_versions")
    op.drop_index("ix_registry_services_next_check", table_name="registry_services")
    op.drop_table("registry_services")
