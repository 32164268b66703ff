"""One contract for the provisioning stores, on every backend: tenant scoping, newest-first pages, the write rules
(replays change nothing, stale runs and illegal transitions are refused), cancel and retry, executions, tokens."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from litestar_registry.core.errors import IllegalTransition, StaleWrite
from litestar_registry.provisioning.errors import WorkflowNotFound
from litestar_registry.provisioning.models import (
    StepChange,
    StepExecution,
    StepRecord,
    WorkflowChange,
    WorkflowQuery,
    WorkflowRecord,
    new_workflow_id,
)
from litestar_registry.provisioning.states import StepEvent, StepStatus, WorkflowEvent, WorkflowStatus
from litestar_registry.provisioning.store import Applied, ProvisioningStore
from litestar_registry.provisioning.tokens import CallbackTokenRecord, issue_token

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def workflow(at: datetime, *, tenant: str = "acme", service: str = "billing", **fields: object) -> WorkflowRecord:
    workflow_id = new_workflow_id(at)
    values: dict[str, object] = {
        "id": workflow_id,
        "tenant": tenant,
        "service_slug": service,
        "definition": "provision",
        "status": WorkflowStatus.PENDING,
        "inputs": {"plan": "pro"},
        "run": 0,
        "dbos_workflow_id": f"{workflow_id}:0",
        "version": 1,
        "created_at": at,
        "updated_at": at,
        **fields,
    }
    return WorkflowRecord(**values)  # type: ignore[arg-type]


def steps_of(record: WorkflowRecord, *names: str) -> list[StepRecord]:
    return [
        StepRecord(
            workflow_id=record.id,
            name=name,
            kind="call",
            position=index,
            depends_on=(names[index - 1],) if index else (),
            status=StepStatus.PENDING,
            version=1,
        )
        for index, name in enumerate(names)
    ]


async def make(store: ProvisioningStore, at: datetime = T0, **fields: object) -> WorkflowRecord:
    record = workflow(at, **fields)
    await store.create_workflow(record, steps_of(record, "a", "b"))
    return record


def wchange(event: WorkflowEvent, version: int, run: int = 0, **fields: object) -> WorkflowChange:
    return WorkflowChange(event=event, run=run, version=version, at=T0, **fields)  # type: ignore[arg-type]


def schange(event: StepEvent, version: int, run: int = 0, **fields: object) -> StepChange:
    return StepChange(event=event, run=run, version=version, at=T0, **fields)  # type: ignore[arg-type]


async def test_reads_are_scoped_to_the_tenant(store: ProvisioningStore) -> None:
    mine = await make(store)
    theirs = await make(store, tenant="globex")
    assert await store.get_workflow(mine.id, tenant="acme") == mine
    assert await store.get_workflow(theirs.id, tenant="acme") is None
    assert await store.get_workflow(theirs.id) == theirs  # the engine's own, unscoped read
    page = await store.find_workflows(WorkflowQuery(tenant="acme"))
    assert [item.id for item in page.items] == [mine.id]
    assert await store.latest_for_service("globex", "billing") == theirs
    with pytest.raises(WorkflowNotFound):
        await store.cancel_workflow(theirs.id, tenant="acme", at=T0)
    with pytest.raises(WorkflowNotFound):
        await store.retry_workflow(theirs.id, tenant="acme", at=T0, dbos_workflow_id="x")
    assert [step.name for step in await store.get_steps(mine.id)] == ["a", "b"]


async def test_pages_are_newest_first_with_filters(store: ProvisioningStore) -> None:
    made = [
        await make(store, T0 + timedelta(seconds=index), service="billing" if index % 2 else "search")
        for index in range(5)
    ]
    await store.apply_workflow(made[3].id, wchange(WorkflowEvent.START, 2))
    first = await store.find_workflows(WorkflowQuery(tenant="acme", limit=2))
    assert [item.id for item in first.items] == [made[4].id, made[3].id]
    second = await store.find_workflows(WorkflowQuery(tenant="acme", limit=2, after=first.next_after))
    assert [item.id for item in second.items] == [made[2].id, made[1].id]
    last = await store.find_workflows(WorkflowQuery(tenant="acme", limit=2, after=second.next_after))
    assert [item.id for item in last.items] == [made[0].id]
    assert last.next_after is None
    exact = await store.find_workflows(WorkflowQuery(tenant="acme", limit=5))
    assert len(exact.items) == 5
    assert exact.next_after is None
    billing = await store.find_workflows(WorkflowQuery(tenant="acme", service_slug="billing"))
    assert [item.id for item in billing.items] == [made[3].id, made[1].id]
    running = await store.find_workflows(WorkflowQuery(tenant="acme", statuses=frozenset({WorkflowStatus.RUNNING})))
    assert [item.id for item in running.items] == [made[3].id]
    assert (await store.latest_for_service("acme", "search")) == made[4]
    assert await store.latest_for_service("acme", "nothing") is None
    assert await store.count_active("billing") == 2
    assert [item.id for item in await store.pending_workflows()] == [made[0].id, made[1].id, made[2].id, made[4].id]


async def test_runner_writes_are_versioned_checked_and_fenced_by_run(store: ProvisioningStore) -> None:
    record = await make(store)
    assert await store.apply_workflow(record.id, wchange(WorkflowEvent.START, 2)) is Applied.APPLIED
    assert await store.apply_step(record.id, "a", schange(StepEvent.START, 3)) is Applied.APPLIED
    # A replay after a crash writes the same versions again: nothing changes, nothing is refused.
    assert await store.apply_workflow(record.id, wchange(WorkflowEvent.START, 2)) is Applied.REPLAYED
    assert await store.apply_step(record.id, "a", schange(StepEvent.START, 3)) is Applied.REPLAYED
    with pytest.raises(IllegalTransition):
        await store.apply_step(record.id, "a", schange(StepEvent.COMPENSATED, 4))
    with pytest.raises(StaleWrite):
        await store.apply_step(record.id, "a", schange(StepEvent.SUCCEED, 4, run=1))
    outputs = {"endpoint": "https://db", "credentials": {"$sealed": "gAAAA"}}
    succeed = schange(StepEvent.SUCCEED, 4, outputs=outputs, completed_seq=1)
    assert await store.apply_step(record.id, "a", succeed) is Applied.APPLIED
    [a, b] = await store.get_steps(record.id)
    assert (a.status, a.outputs, a.completed_seq, a.started_at, a.finished_at) == (
        StepStatus.SUCCEEDED,
        outputs,
        1,
        T0,
        T0,
    )
    assert a.redacted().outputs == {"endpoint": "https://db", "credentials": "[redacted]"}
    assert b.status is StepStatus.PENDING
    assert await store.apply_workflow(record.id, wchange(WorkflowEvent.FAIL, 5, error="boom")) is Applied.APPLIED
    failed = await store.get_workflow(record.id)
    assert failed is not None
    assert (failed.status, failed.error, failed.started_at, failed.finished_at) == (
        WorkflowStatus.FAILED,
        "boom",
        T0,
        T0,
    )
    with pytest.raises(WorkflowNotFound):
        await store.apply_workflow("no-such-workflow", wchange(WorkflowEvent.START, 9))


async def test_cancel_stops_the_workflow_its_steps_and_its_tokens(store: ProvisioningStore) -> None:
    record = await make(store)
    await store.apply_workflow(record.id, wchange(WorkflowEvent.START, 2))
    await store.apply_step(record.id, "a", schange(StepEvent.START, 3))
    _token, token_hash = issue_token()
    await store.put_token(token_record(record, "a", token_hash))
    cancelled = await store.cancel_workflow(record.id, tenant="acme", at=T0 + timedelta(seconds=1))
    assert cancelled.status is WorkflowStatus.CANCELLED
    assert cancelled.version == 4
    assert [step.status for step in await store.get_steps(record.id)] == [StepStatus.CANCELLED] * 2
    assert (await store.get_token(token_hash)).used_at is not None  # type: ignore[union-attr]
    # The runner, still going somewhere, can no longer move anything.
    with pytest.raises(IllegalTransition):
        await store.apply_step(record.id, "a", schange(StepEvent.SUCCEED, 5))
    with pytest.raises(IllegalTransition):
        await store.apply_workflow(record.id, wchange(WorkflowEvent.SUCCEED, 6))
    with pytest.raises(IllegalTransition):
        await store.cancel_workflow(record.id, tenant="acme", at=T0)
    assert await store.count_active("billing") == 0


async def test_retry_starts_the_next_run_from_the_steps_that_did_not_succeed(store: ProvisioningStore) -> None:
    record = await make(store)
    with pytest.raises(IllegalTransition):
        await store.retry_workflow(record.id, tenant="acme", at=T0, dbos_workflow_id=f"{record.id}:1")
    await store.apply_workflow(record.id, wchange(WorkflowEvent.START, 2))
    await store.apply_step(record.id, "a", schange(StepEvent.START, 3))
    await store.apply_step(record.id, "a", schange(StepEvent.SUCCEED, 4, outputs={"x": 1}, completed_seq=1))
    await store.apply_step(record.id, "b", schange(StepEvent.START, 5))
    await store.apply_step(record.id, "b", schange(StepEvent.FAIL, 6, error="no"))
    await store.apply_workflow(record.id, wchange(WorkflowEvent.FAIL, 7, error="step b failed"))
    updated, steps = await store.retry_workflow(record.id, tenant="acme", at=T0, dbos_workflow_id=f"{record.id}:1")
    assert (updated.status, updated.run, updated.version, updated.error, updated.dbos_workflow_id) == (
        WorkflowStatus.PENDING,
        1,
        8,
        None,
        f"{record.id}:1",
    )
    assert [(step.status, step.outputs, step.error) for step in steps] == [
        (StepStatus.SUCCEEDED, {"x": 1}, None),
        (StepStatus.PENDING, None, None),
    ]
    assert await store.get_workflow(record.id) == updated
    # The old run is fenced off; the new one writes on.
    with pytest.raises(StaleWrite):
        await store.apply_workflow(record.id, wchange(WorkflowEvent.START, 9, run=0))
    assert await store.apply_workflow(record.id, wchange(WorkflowEvent.START, 9, run=1)) is Applied.APPLIED


async def test_executions_are_all_recorded_and_counted(store: ProvisioningStore) -> None:
    record = await make(store)
    ids = []
    for attempt in (1, 1, 2):  # attempt 1 ran twice (its process died), then attempt 2
        execution = StepExecution(
            workflow_id=record.id, step="a", run=0, attempt=attempt, executor_id="local", started_at=T0
        )
        ids.append(await store.start_execution(execution))
    await store.finish_execution(ids[2], at=T0 + timedelta(seconds=2), outcome="succeeded", error=None)
    await store.finish_execution(ids[1], at=T0 + timedelta(seconds=1), outcome="failed", error="boom")
    executions = await store.list_executions(record.id, "a")
    assert [(e.attempt, e.outcome, e.error) for e in executions] == [
        (1, None, None),
        (1, "failed", "boom"),
        (2, "succeeded", None),
    ]
    assert [step.attempts for step in await store.get_steps(record.id)] == [3, 0]
    assert await store.list_executions(record.id, "b") == []


def token_record(record: WorkflowRecord, step: str, token_hash: str, seconds: float = 60) -> CallbackTokenRecord:
    return CallbackTokenRecord(
        token_hash=token_hash,
        tenant=record.tenant,
        workflow_id=record.id,
        step=step,
        run=record.run,
        dbos_workflow_id=record.dbos_workflow_id,
        issued_at=T0,
        expires_at=T0 + timedelta(seconds=seconds),
    )


async def test_a_token_is_claimed_once_and_claiming_it_retires_its_siblings(store: ProvisioningStore) -> None:
    record = await make(store)
    (_, first), (_, second), (_, other_step) = issue_token(), issue_token(), issue_token()
    await store.put_token(token_record(record, "a", first))
    await store.put_token(token_record(record, "a", second))  # a second notification attempt: both stay valid
    await store.put_token(token_record(record, "b", other_step))
    assert await store.claim_token(first, at=T0 + timedelta(seconds=61), payload={"late": True}) is None  # expired
    claims = await asyncio.gather(
        *(store.claim_token(second, at=T0 + timedelta(seconds=1), payload={"n": n}) for n in range(4))
    )
    winners = [claim for claim in claims if claim is not None]
    assert len(winners) == 1
    assert winners[0].payload in ({"n": n} for n in range(4))
    assert (await store.get_token(first)).used_at is not None  # type: ignore[union-attr]  # its sibling is retired
    assert (await store.get_token(other_step)).used_at is None  # type: ignore[union-attr]  # another step's is not
    assert [token.token_hash for token in await store.undelivered_tokens()] == [second]
    await store.mark_delivered(second)
    assert await store.undelivered_tokens() == []
    await store.revoke_tokens(record.id, step="b", at=T0)
    assert await store.claim_token(other_step, at=T0, payload={}) is None
    assert await store.get_token("0" * 64) is None


async def test_writes_are_transactions_also_on_the_registry_stores_autocommit_engine(tmp_path: Path) -> None:
    """Beside a SQLite registry store the read model shares its engine, whose connections start in autocommit."""
    from sqlalchemy import insert

    from litestar_registry.provisioning.store.sqlalchemy import SQLAlchemyProvisioningStore, _plain, _workflows
    from litestar_registry.store.sqlalchemy import SQLAlchemyServiceStore
    from tests.provisioning.conftest import sqlite_url

    async with (
        SQLAlchemyServiceStore(url=sqlite_url(tmp_path), create_schema=True) as registry,
        SQLAlchemyProvisioningStore(engine=registry.engine) as store,
    ):
        record = workflow(T0)

        async def half_way() -> None:
            async with store._write() as conn:
                await conn.execute(insert(_workflows).values(**_plain(msgspec.structs.asdict(record))))
                raise RuntimeError("half way")

        with pytest.raises(RuntimeError, match="half way"):
            await half_way()
        assert await store.get_workflow(record.id) is None  # rolled back, not committed on its own
