"""The provisioning read model's tables, on the registry's own metadata (bind key ``registry``, ``registry_`` names).

Indexes serve the reads the routes make, each a range scan: a tenant's workflows newest first (ids are UUIDv7, so
they sort by creation), filtered by status or service; the latest workflow of a service; the active workflows of a
service (the deregistration check); a workflow's steps and executions; a token by its hash. Only token hashes are
stored; credentials in ``outputs`` and ``payload`` are sealed (Fernet) before they get here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from litestar_registry.store.sqlalchemy.models import TABLE_PREFIX, Json, RegistryBase, Slug

__all__ = (
    "ProvisioningExecutionModel",
    "ProvisioningStepModel",
    "ProvisioningTokenModel",
    "ProvisioningWorkflowModel",
)

_WORKFLOWS = f"{TABLE_PREFIX}provisioning_workflows"
_STEPS = f"{TABLE_PREFIX}provisioning_steps"
_EXECUTIONS = f"{TABLE_PREFIX}provisioning_executions"
_TOKENS = f"{TABLE_PREFIX}provisioning_tokens"


class ProvisioningWorkflowModel(RegistryBase):
    """One provisioning workflow of one tenant."""

    __tablename__ = _WORKFLOWS
    __table_args__ = (
        Index(f"ix_{_WORKFLOWS}_tenant", "tenant", "id"),
        Index(f"ix_{_WORKFLOWS}_tenant_status", "tenant", "status", "id"),
        Index(f"ix_{_WORKFLOWS}_tenant_service", "tenant", "service_slug", "id"),
        Index(f"ix_{_WORKFLOWS}_service_status", "service_slug", "status"),
        Index(f"ix_{_WORKFLOWS}_status", "status", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String())
    service_slug: Mapped[str] = mapped_column(Slug)
    definition: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    inputs: Mapped[dict[str, Any]] = mapped_column(Json)
    run: Mapped[int] = mapped_column(Integer())
    dbos_workflow_id: Mapped[str] = mapped_column(String())
    version: Mapped[int] = mapped_column(BigInteger())
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC())
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC())
    started_at: Mapped[datetime | None] = mapped_column(DateTimeUTC())
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC())
    error: Mapped[str | None] = mapped_column(Text())


class ProvisioningStepModel(RegistryBase):
    """One step of a workflow."""

    __tablename__ = _STEPS

    workflow_id: Mapped[str] = mapped_column(
        String(36), ForeignKey(f"{_WORKFLOWS}.id", ondelete="CASCADE", name=f"fk_{_STEPS}_workflow"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer())
    depends_on: Mapped[list[str]] = mapped_column(Json)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer())
    started_at: Mapped[datetime | None] = mapped_column(DateTimeUTC())
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC())
    error: Mapped[str | None] = mapped_column(Text())
    outputs: Mapped[dict[str, Any] | None] = mapped_column(Json)
    completed_seq: Mapped[int | None] = mapped_column(Integer())
    version: Mapped[int] = mapped_column(BigInteger())


class ProvisioningExecutionModel(RegistryBase):
    """One execution of an attempt of a step; the surrogate id keeps the order they started in."""

    __tablename__ = _EXECUTIONS
    __table_args__ = (Index(f"ix_{_EXECUTIONS}_workflow", "workflow_id", "step", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    workflow_id: Mapped[str] = mapped_column(
        String(36), ForeignKey(f"{_WORKFLOWS}.id", ondelete="CASCADE", name=f"fk_{_EXECUTIONS}_workflow")
    )
    step: Mapped[str] = mapped_column(String(64))
    run: Mapped[int] = mapped_column(Integer())
    attempt: Mapped[int] = mapped_column(Integer())
    executor_id: Mapped[str] = mapped_column(String())
    started_at: Mapped[datetime] = mapped_column(DateTimeUTC())
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC())
    outcome: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text())


class ProvisioningTokenModel(RegistryBase):
    """A callback token, by the SHA-256 of the token (the token itself is never stored)."""

    __tablename__ = _TOKENS
    __table_args__ = (
        Index(f"ix_{_TOKENS}_step", "workflow_id", "step"),
        Index(f"ix_{_TOKENS}_undelivered", "delivered", "used_at"),
    )

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String())
    workflow_id: Mapped[str] = mapped_column(
        String(36), ForeignKey(f"{_WORKFLOWS}.id", ondelete="CASCADE", name=f"fk_{_TOKENS}_workflow")
    )
    step: Mapped[str] = mapped_column(String(64))
    run: Mapped[int] = mapped_column(Integer())
    dbos_workflow_id: Mapped[str] = mapped_column(String())
    issued_at: Mapped[datetime] = mapped_column(DateTimeUTC())
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC())
    used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC())
    payload: Mapped[dict[str, Any] | None] = mapped_column(Json)
    delivered: Mapped[bool] = mapped_column(Boolean())
