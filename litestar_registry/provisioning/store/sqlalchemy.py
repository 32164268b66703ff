"""The SQL provisioning store: SQLite for one app instance, PostgreSQL for several.

A runner's write reads the row, decides with the shared rules of :mod:`.base`, and writes ``WHERE version = :read``
(compare-and-set): a concurrent writer makes it read again, so the decision is always made on what is stored. A token
is claimed with one conditional ``UPDATE ... WHERE used_at IS NULL AND expires_at > :now``: of two concurrent
callbacks, the database lets one win. On SQLite, which has one writer, the store queues its own writes.

A write that changes a workflow's course appends its topics to the registry's change log (``registry_events``) in the
same transaction, with the registry store's own :func:`~litestar_registry.store.sqlalchemy.store.append_events`: one
counter, so workflow and service events share one sequence of ids, in commit order.
"""

# The methods inherit their docstrings from ProvisioningStore.
# ruff: noqa: D102

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import msgspec
from sqlalchemy import Table, and_, delete, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from litestar_registry.core.errors import StaleWrite
from litestar_registry.core.events import EventDraft
from litestar_registry.provisioning.errors import WorkflowNotFound
from litestar_registry.provisioning.models import (
    StepChange,
    StepExecution,
    StepRecord,
    WorkflowChange,
    WorkflowPage,
    WorkflowQuery,
    WorkflowRecord,
)
from litestar_registry.provisioning.states import ACTIVE_WORKFLOW, StepEvent, WorkflowStatus, step_transition
from litestar_registry.provisioning.store.base import (
    CANCELLABLE_STEPS,
    RETRIED_STEPS,
    Applied,
    EventsHook,
    ProvisioningStore,
    cancel_values,
    retry_values,
    started_events,
    step_change_events,
    step_change_values,
    workflow_change_events,
    workflow_change_values,
)
from litestar_registry.provisioning.store.tables import (
    ProvisioningExecutionModel,
    ProvisioningStepModel,
    ProvisioningTokenModel,
    ProvisioningWorkflowModel,
)
from litestar_registry.provisioning.tokens import CallbackTokenRecord
from litestar_registry.store.sqlalchemy.read_model import SQLReadModel
from litestar_registry.store.sqlalchemy.store import append_events

__all__ = ("SQLAlchemyProvisioningStore",)

_workflows = cast("Table", ProvisioningWorkflowModel.__table__)
_steps = cast("Table", ProvisioningStepModel.__table__)
_executions = cast("Table", ProvisioningExecutionModel.__table__)
_tokens = cast("Table", ProvisioningTokenModel.__table__)
_CAS_ROUNDS = 5
_ACTIVE_VALUES = sorted(status.value for status in ACTIVE_WORKFLOW)


def _workflow(row: RowMapping) -> WorkflowRecord:
    return msgspec.convert(dict(row), WorkflowRecord)


def _step(row: RowMapping) -> StepRecord:
    return msgspec.convert(dict(row), StepRecord)


def _token(row: RowMapping) -> CallbackTokenRecord:
    return msgspec.convert(dict(row), CallbackTokenRecord)


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Column values: enums as their strings."""
    return {key: value.value if isinstance(value, enum.Enum) else value for key, value in values.items()}


class SQLAlchemyProvisioningStore(SQLReadModel, ProvisioningStore):
    """Provisioning records in SQL through SQLAlchemy's asyncio engine (SQLite or PostgreSQL).

    Give ``url`` (the store creates its engine in :meth:`open` and disposes it in :meth:`close`) or ``engine`` (shared,
    for instance the registry store's; never disposed here).
    """

    kind = "provisioning"

    def __init__(
        self,
        url: str | None = None,
        *,
        engine: AsyncEngine | None = None,
        create_schema: bool = False,
        engine_options: dict[str, Any] | None = None,
        on_events: EventsHook | None = None,
    ) -> None:
        """Configure the store; nothing connects before :meth:`open`.

        Args:
            url: An async SQLAlchemy URL (``sqlite+aiosqlite:///path``, ``postgresql+asyncpg://...``).
            engine: An engine to share instead of ``url``.
            create_schema: Bring the registry's tables (these included) to the newest revision at :meth:`open`.
            engine_options: Keyword arguments for ``create_async_engine``; only with ``url``.
            on_events: Awaited after a write appended events to the change log (the registry's ``on_events``).
        """
        super().__init__(url, engine=engine, create_schema=create_schema, engine_options=engine_options)
        self.on_events = on_events

    # Workflows and steps

    async def create_workflow(self, workflow: WorkflowRecord, steps: Sequence[StepRecord]) -> None:
        drafts = started_events(workflow, steps, workflow.created_at)
        async with self._write() as conn:
            await conn.execute(insert(_workflows).values(**_plain(msgspec.structs.asdict(workflow))))
            if steps:
                await conn.execute(
                    insert(_steps),
                    [{**_plain(msgspec.structs.asdict(step)), "depends_on": list(step.depends_on)} for step in steps],
                )
            await append_events(conn, drafts)
        await self._announce()

    async def get_workflow(self, workflow_id: str, *, tenant: str | None = None) -> WorkflowRecord | None:
        statement = select(_workflows).where(_workflows.c.id == workflow_id)
        if tenant is not None:
            statement = statement.where(_workflows.c.tenant == tenant)
        async with self._read() as conn:
            row = (await conn.execute(statement)).mappings().first()
        return _workflow(row) if row is not None else None

    async def find_workflows(self, query: WorkflowQuery) -> WorkflowPage:
        statement = select(_workflows).where(_workflows.c.tenant == query.tenant)
        if query.statuses is not None:
            statement = statement.where(_workflows.c.status.in_(sorted(status.value for status in query.statuses)))
        if query.service_slug is not None:
            statement = statement.where(_workflows.c.service_slug == query.service_slug)
        if query.definition is not None:
            statement = statement.where(_workflows.c.definition == query.definition)
        if query.after is not None:
            statement = statement.where(_workflows.c.id < query.after)
        statement = statement.order_by(_workflows.c.id.desc()).limit(query.limit + 1)
        async with self._read() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        items = [_workflow(row) for row in rows[: query.limit]]
        return WorkflowPage(items=items, next_after=items[-1].id if len(rows) > query.limit else None)

    async def latest_for_service(self, tenant: str, service_slug: str) -> WorkflowRecord | None:
        page = await self.find_workflows(WorkflowQuery(tenant=tenant, service_slug=service_slug, limit=1))
        return page.items[0] if page.items else None

    async def count_active(self, service_slug: str) -> int:
        statement = (
            select(func.count())
            .select_from(_workflows)
            .where(_workflows.c.service_slug == service_slug, _workflows.c.status.in_(_ACTIVE_VALUES))
        )
        async with self._read() as conn:
            return int((await conn.execute(statement)).scalar_one())

    async def pending_workflows(self, limit: int = 1000) -> list[WorkflowRecord]:
        statement = (
            select(_workflows)
            .where(_workflows.c.status == WorkflowStatus.PENDING.value)
            .order_by(_workflows.c.status, _workflows.c.id)
            .limit(limit)
        )
        async with self._read() as conn:
            return [_workflow(row) for row in (await conn.execute(statement)).mappings().all()]

    async def get_steps(self, workflow_id: str) -> list[StepRecord]:
        statement = select(_steps).where(_steps.c.workflow_id == workflow_id).order_by(_steps.c.position)
        async with self._read() as conn:
            return [_step(row) for row in (await conn.execute(statement)).mappings().all()]

    async def apply_workflow(self, workflow_id: str, change: WorkflowChange) -> Applied:
        for _ in range(_CAS_ROUNDS):
            async with self._write() as conn:
                current = await self._workflow_row(conn, workflow_id)
                values = workflow_change_values(current, change)
                if values is None:
                    return Applied.REPLAYED
                result = await conn.execute(
                    update(_workflows)
                    .where(_workflows.c.id == workflow_id, _workflows.c.version == current.version)
                    .values(**_plain(values))
                )
                if result.rowcount != 1:
                    continue
                drafts = workflow_change_events(current, values, change.at)
                await append_events(conn, drafts)
            await self._announced(drafts)
            return Applied.APPLIED
        raise StaleWrite(f"workflow {workflow_id} kept changing under a write")

    async def apply_step(self, workflow_id: str, step: str, change: StepChange) -> Applied:
        for _ in range(_CAS_ROUNDS):
            async with self._write() as conn:
                workflow = await self._workflow_row(conn, workflow_id)
                row = (
                    (
                        await conn.execute(
                            select(_steps).where(_steps.c.workflow_id == workflow_id, _steps.c.name == step)
                        )
                    )
                    .mappings()
                    .first()
                )
                if row is None:
                    raise WorkflowNotFound(f"workflow {workflow_id!r} has no step {step!r}")
                values = step_change_values(workflow, _step(row), change)
                if values is None:
                    return Applied.REPLAYED
                # Compare-and-set on the workflow's version, the high-water mark of every write to it and its steps:
                # a concurrent write (a cancel, a retry) makes this one read again.
                moved = await conn.execute(
                    update(_workflows)
                    .where(_workflows.c.id == workflow_id, _workflows.c.version == workflow.version)
                    .values(version=change.version, updated_at=change.at)
                )
                if moved.rowcount != 1:
                    continue
                await conn.execute(
                    update(_steps)
                    .where(_steps.c.workflow_id == workflow_id, _steps.c.name == step)
                    .values(**_plain(values))
                )
                drafts = step_change_events(workflow, _step(row), change, values)
                await append_events(conn, drafts)
            await self._announced(drafts)
            return Applied.APPLIED
        raise StaleWrite(f"step {step} of workflow {workflow_id} kept changing under a write")

    async def cancel_workflow(self, workflow_id: str, *, tenant: str, at: datetime) -> WorkflowRecord:
        for _ in range(_CAS_ROUNDS):
            async with self._write() as conn:
                current = await self._workflow_row(conn, workflow_id, tenant)
                values = cancel_values(current, at)
                result = await conn.execute(
                    update(_workflows)
                    .where(_workflows.c.id == workflow_id, _workflows.c.version == current.version)
                    .values(**_plain(values))
                )
                if result.rowcount != 1:
                    continue
                for status in CANCELLABLE_STEPS:
                    await conn.execute(
                        update(_steps)
                        .where(_steps.c.workflow_id == workflow_id, _steps.c.status == status.value)
                        .values(
                            status=step_transition(status, StepEvent.CANCEL).value,
                            finished_at=at,
                            version=values["version"],
                        )
                    )
                await self._revoke(conn, workflow_id, None, at)
                drafts = workflow_change_events(current, values, at)
                await append_events(conn, drafts)
            await self._announced(drafts)
            return msgspec.structs.replace(current, **values)
        raise StaleWrite(f"workflow {workflow_id} kept changing under a cancel")

    async def retry_workflow(
        self, workflow_id: str, *, tenant: str, at: datetime, dbos_workflow_id: str
    ) -> tuple[WorkflowRecord, list[StepRecord]]:
        for _ in range(_CAS_ROUNDS):
            async with self._write() as conn:
                current = await self._workflow_row(conn, workflow_id, tenant)
                values = retry_values(current, at, dbos_workflow_id)
                result = await conn.execute(
                    update(_workflows)
                    .where(_workflows.c.id == workflow_id, _workflows.c.version == current.version)
                    .values(**_plain(values))
                )
                if result.rowcount != 1:
                    continue
                for status in RETRIED_STEPS:
                    await conn.execute(
                        update(_steps)
                        .where(_steps.c.workflow_id == workflow_id, _steps.c.status == status.value)
                        .values(
                            status=step_transition(status, StepEvent.RETRY).value,
                            started_at=None,
                            finished_at=None,
                            error=None,
                            outputs=None,
                            completed_seq=None,
                            version=values["version"],
                        )
                    )
                rows = (
                    await conn.execute(
                        select(_steps).where(_steps.c.workflow_id == workflow_id).order_by(_steps.c.position)
                    )
                ).mappings()
                updated, steps = msgspec.structs.replace(current, **values), [_step(row) for row in rows]
                drafts = started_events(updated, steps, at)
                await append_events(conn, drafts)
            await self._announced(drafts)
            return updated, steps
        raise StaleWrite(f"workflow {workflow_id} kept changing under a retry")

    # Executions

    async def start_execution(self, execution: StepExecution) -> int:
        values = msgspec.structs.asdict(execution)
        values.pop("id")
        async with self._write() as conn:
            result = await conn.execute(insert(_executions).values(**values).returning(_executions.c.id))
            await conn.execute(
                update(_steps)
                .where(_steps.c.workflow_id == execution.workflow_id, _steps.c.name == execution.step)
                .values(attempts=_steps.c.attempts + 1)
            )
            return int(result.scalar_one())

    async def finish_execution(self, execution_id: int, *, at: datetime, outcome: str, error: str | None) -> None:
        async with self._write() as conn:
            await conn.execute(
                update(_executions)
                .where(_executions.c.id == execution_id)
                .values(finished_at=at, outcome=outcome, error=error)
            )

    async def list_executions(self, workflow_id: str, step: str | None = None) -> list[StepExecution]:
        statement = select(_executions).where(_executions.c.workflow_id == workflow_id)
        if step is not None:
            statement = statement.where(_executions.c.step == step)
        async with self._read() as conn:
            rows = (await conn.execute(statement.order_by(_executions.c.id))).mappings().all()
        return [msgspec.convert(dict(row), StepExecution) for row in rows]

    # Callback tokens

    async def put_token(self, token: CallbackTokenRecord) -> None:
        async with self._write() as conn:
            await conn.execute(insert(_tokens).values(**msgspec.structs.asdict(token)))

    async def get_token(self, token_hash: str) -> CallbackTokenRecord | None:
        async with self._read() as conn:
            row = (await conn.execute(select(_tokens).where(_tokens.c.token_hash == token_hash))).mappings().first()
        return _token(row) if row is not None else None

    async def claim_token(
        self, token_hash: str, *, at: datetime, payload: dict[str, Any]
    ) -> CallbackTokenRecord | None:
        async with self._write() as conn:
            row = (
                (
                    await conn.execute(
                        update(_tokens)
                        .where(
                            and_(
                                _tokens.c.token_hash == token_hash,
                                _tokens.c.used_at.is_(None),
                                _tokens.c.expires_at > at,
                            )
                        )
                        .values(used_at=at, payload=payload)
                        .returning(*_tokens.c)
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            await conn.execute(
                update(_tokens)
                .where(
                    _tokens.c.workflow_id == row["workflow_id"],
                    _tokens.c.step == row["step"],
                    _tokens.c.run == row["run"],
                    _tokens.c.used_at.is_(None),
                )
                .values(used_at=at)
            )
        return _token(row)

    async def mark_delivered(self, token_hash: str) -> None:
        async with self._write() as conn:
            await conn.execute(update(_tokens).where(_tokens.c.token_hash == token_hash).values(delivered=True))

    async def undelivered_tokens(self) -> list[CallbackTokenRecord]:
        statement = select(_tokens).where(
            _tokens.c.delivered.is_(False), _tokens.c.used_at.is_not(None), _tokens.c.payload.is_not(None)
        )
        async with self._read() as conn:
            return [_token(row) for row in (await conn.execute(statement)).mappings().all()]

    async def revoke_tokens(self, workflow_id: str, *, step: str | None, at: datetime) -> None:
        async with self._write() as conn:
            await self._revoke(conn, workflow_id, step, at)

    async def _revoke(self, conn: AsyncConnection, workflow_id: str, step: str | None, at: datetime) -> None:
        statement = update(_tokens).where(_tokens.c.workflow_id == workflow_id, _tokens.c.used_at.is_(None))
        if step is not None:
            statement = statement.where(_tokens.c.step == step)
        await conn.execute(statement.values(used_at=at))

    async def _announced(self, drafts: Sequence[EventDraft]) -> None:
        """After the transaction that appended ``drafts`` committed: wake the log's followers, if it appended any."""
        if drafts:
            await self._announce()

    async def _workflow_row(self, conn: AsyncConnection, workflow_id: str, tenant: str | None = None) -> WorkflowRecord:
        statement = select(_workflows).where(_workflows.c.id == workflow_id)
        if tenant is not None:
            statement = statement.where(_workflows.c.tenant == tenant)
        row = (await conn.execute(statement)).mappings().first()
        if row is None:
            raise WorkflowNotFound(f"no workflow {workflow_id!r}")
        return _workflow(row)

    async def _clear_for_tests(self) -> None:
        """Delete every provisioning row (the server backends are shared between tests)."""
        async with self._write() as conn:
            for table in (_tokens, _executions, _steps, _workflows):
                await conn.execute(delete(table))
