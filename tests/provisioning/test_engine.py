"""The engine end to end on SQLite with real DBOS: concurrent DAG steps, retries with backoff, compensation in reverse,
callback steps (single use, expiring), cancel and retry, tenants, and no plaintext secret in any table."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import pytest
from dbos import DBOS

from litestar_registry.core.clock import ManualClock
from litestar_registry.core.errors import IllegalTransition, InvalidInput
from litestar_registry.provisioning import (
    Call,
    Callback,
    CallbackTokenExpired,
    CallbackTokenUnknown,
    CallbackTokenUsed,
    CompensationContext,
    HttpCall,
    PermanentStepError,
    RetryPolicy,
    Step,
    StepContext,
    StepStatus,
    UnknownDefinition,
    WorkflowDefinition,
    WorkflowNotFound,
    WorkflowQuery,
    WorkflowStatus,
)
from litestar_registry.provisioning.engine import ProvisioningEngine
from tests.provisioning.engines import CALLBACK_URL, running_engine, settled
from tests.provisioning.receiver import Receiver

QUICK = RetryPolicy(attempts=1)


def statuses(steps: list[Any]) -> dict[str, StepStatus]:
    return {step.name: step.status for step in steps}


async def executions(engine: ProvisioningEngine, workflow_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for execution in await engine.store.list_executions(workflow_id):
        counts[execution.step] = counts.get(execution.step, 0) + 1
    return counts


async def test_ready_steps_run_concurrently_and_see_their_dependencies(tmp_path: Path) -> None:
    spans: dict[str, tuple[float, float]] = {}
    seen: dict[str, Any] = {}

    def timed(name: str, outputs: dict[str, Any]) -> Any:
        async def run(ctx: StepContext) -> dict[str, Any]:
            began = time.monotonic()
            await asyncio.sleep(0.4)
            spans[name] = (began, time.monotonic())
            seen[name] = dict(ctx.dependencies)
            return outputs

        return run

    definition = WorkflowDefinition(
        "fan",
        [
            Step("left", Call(timed("left", {"x": 1}))),
            Step("right", Call(timed("right", {"y": 2}))),
            Step("join", Call(timed("join", {})), depends_on=("left", "right")),
        ],
    )
    async with running_engine(tmp_path, [definition]) as engine:
        started = await engine.start(tenant="acme", service_slug="billing", definition="fan")
        assert started.status is WorkflowStatus.PENDING
        done = await settled(engine, started.id)
        assert done.workflow.status is WorkflowStatus.SUCCEEDED
        assert statuses(done.steps) == dict.fromkeys(["left", "right", "join"], StepStatus.SUCCEEDED)
        (l0, l1), (r0, r1), (j0, _) = spans["left"], spans["right"], spans["join"]
        assert l0 < r1
        assert r0 < l1
        assert j0 >= max(l1, r1)  # join waited for both
        assert seen["join"] == {"left": {"x": 1}, "right": {"y": 2}}
        assert [step.completed_seq for step in done.steps][2] == 3
        assert await executions(engine, started.id) == {"left": 1, "right": 1, "join": 1}
        assert done.workflow.started_at is not None
        assert done.workflow.finished_at is not None


async def test_a_failing_attempt_is_retried_with_capped_exponential_backoff(tmp_path: Path) -> None:
    moments: list[float] = []

    async def flaky(ctx: StepContext) -> dict[str, Any]:
        moments.append(time.monotonic())
        if ctx.attempt < 4:
            raise ConnectionError(f"attempt {ctx.attempt} lost its connection")
        return {"attempt": ctx.attempt}

    policy = RetryPolicy(attempts=4, initial_interval_seconds=0.2, backoff_rate=3.0, max_interval_seconds=0.5)
    definition = WorkflowDefinition("flaky", [Step("flaky", Call(flaky), retry=policy)])
    async with running_engine(tmp_path, [definition]) as engine:
        started = await engine.start(tenant="acme", service_slug="billing", definition="flaky")
        done = await settled(engine, started.id)
        assert done.workflow.status is WorkflowStatus.SUCCEEDED
        [step] = done.steps
        assert (step.attempts, step.outputs) == (4, {"attempt": 4})
        gaps = [later - earlier for earlier, later in itertools.pairwise(moments)]
        assert gaps[0] >= 0.2
        assert gaps[1] >= 0.5
        assert gaps[2] >= 0.5
        assert gaps[1] < 1.5
        runs = await engine.store.list_executions(started.id)
        assert [(run.attempt, run.outcome) for run in runs] == [
            (1, "failed"),
            (2, "failed"),
            (3, "failed"),
            (4, "succeeded"),
        ]
        assert runs[0].error == "ConnectionError: attempt 1 lost its connection"
        steps = await DBOS.list_workflow_steps_async(started.dbos_workflow_id)
        names = [entry["function_name"] for entry in steps]
        assert names.count("DBOS.sleep") == 3  # each backoff is a durable sleep
        assert [name for name in names if name.startswith("flaky:")] == [
            "flaky:attempt#0.1",
            "flaky:attempt#0.2",
            "flaky:attempt#0.3",
            "flaky:attempt#0.4",
        ]


async def test_a_step_failing_for_good_compensates_the_completed_steps_in_reverse(tmp_path: Path) -> None:
    undone: list[tuple[str, Any]] = []

    def compensation(name: str) -> Any:
        async def undo(ctx: CompensationContext) -> None:
            undone.append((name, dict(ctx.outputs)))

        return undo

    async def make(ctx: StepContext) -> dict[str, Any]:
        return {"made": ctx.step, "credentials": {"token": f"secret-{ctx.step}"}}

    async def broken(ctx: StepContext) -> dict[str, Any]:
        raise PermanentStepError("quota exceeded")

    never_ran: list[str] = []

    async def after(ctx: StepContext) -> dict[str, Any]:
        never_ran.append(ctx.step)
        return {}

    definition = WorkflowDefinition(
        "undo",
        [
            Step("database", Call(make), compensation=compensation("database")),
            Step("bucket", Call(make), depends_on=("database",), compensation=compensation("bucket")),
            Step("log", Call(make), depends_on=("database",)),  # no compensation: stays done
            Step("dns", Call(broken), depends_on=("bucket", "log"), retry=RetryPolicy(attempts=5)),
            Step("announce", Call(after), depends_on=("dns",)),
        ],
    )
    async with running_engine(tmp_path, [definition]) as engine:
        started = await engine.start(tenant="acme", service_slug="billing", definition="undo")
        done = await settled(engine, started.id)
        assert done.workflow.status is WorkflowStatus.COMPENSATED
        assert done.workflow.error == "step 'dns' failed: PermanentStepError: quota exceeded"
        assert statuses(done.steps) == {
            "database": StepStatus.COMPENSATED,
            "bucket": StepStatus.COMPENSATED,
            "log": StepStatus.SUCCEEDED,
            "dns": StepStatus.FAILED,
            "announce": StepStatus.SKIPPED,
        }
        # Reverse order of completion, each with its outputs (credentials opened for it, in memory only).
        assert undone == [
            ("bucket", {"made": "bucket", "credentials": {"token": "secret-bucket"}}),
            ("database", {"made": "database", "credentials": {"token": "secret-database"}}),
        ]
        assert never_ran == []
        assert (await executions(engine, started.id))["dns"] == 1  # permanent: no retry
        assert done.steps[0].outputs == {"made": "database", "credentials": "[redacted]"}


async def test_a_compensation_that_fails_leaves_the_workflow_failed(tmp_path: Path) -> None:
    async def ok(ctx: StepContext) -> dict[str, Any]:
        return {}

    async def bad(ctx: StepContext) -> dict[str, Any]:
        raise PermanentStepError("nope")

    async def cannot_undo(ctx: CompensationContext) -> None:
        raise RuntimeError("the bucket is gone")

    definition = WorkflowDefinition(
        "stuck",
        [
            Step(
                "bucket", Call(ok), compensation=cannot_undo, retry=RetryPolicy(attempts=2, initial_interval_seconds=0)
            ),
            Step("dns", Call(bad), depends_on=("bucket",)),
        ],
    )
    async with running_engine(tmp_path, [definition]) as engine:
        started = await engine.start(tenant="acme", service_slug="billing", definition="stuck")
        done = await settled(engine, started.id)
        assert done.workflow.status is WorkflowStatus.FAILED
        assert done.workflow.error is not None
        assert done.workflow.error.endswith("a compensation failed")
        bucket = done.steps[0]
        assert bucket.status is StepStatus.FAILED
        assert bucket.error == "compensation failed: RuntimeError: the bucket is gone"
        assert (await executions(engine, started.id))["bucket:compensate"] == 2


async def test_retry_resumes_a_failed_workflow_from_its_failed_steps(tmp_path: Path) -> None:
    healthy = {"value": False}
    ran: list[str] = []

    async def prepare(ctx: StepContext) -> dict[str, Any]:
        ran.append("prepare")
        return {"prepared": True}

    async def deploy(ctx: StepContext) -> dict[str, Any]:
        ran.append("deploy")
        if not healthy["value"]:
            raise RuntimeError("cluster unavailable")
        return {"seen": dict(ctx.dependencies)}

    definition = WorkflowDefinition(
        "deploy", [Step("prepare", Call(prepare)), Step("deploy", Call(deploy), depends_on=("prepare",), retry=QUICK)]
    )
    async with running_engine(tmp_path, [definition]) as engine:
        started = await engine.start(tenant="acme", service_slug="billing", definition="deploy")
        failed = await settled(engine, started.id)
        assert failed.workflow.status is WorkflowStatus.FAILED
        with pytest.raises(IllegalTransition):
            await engine.cancel(tenant="acme", workflow_id=started.id)
        healthy["value"] = True
        retried = await engine.retry(tenant="acme", workflow_id=started.id)
        assert (retried.status, retried.run, retried.dbos_workflow_id) == (
            WorkflowStatus.PENDING,
            1,
            f"{started.id}:1",
        )
        done = await settled(engine, started.id)
        assert done.workflow.status is WorkflowStatus.SUCCEEDED
        assert done.workflow.error is None
        assert ran == ["prepare", "deploy", "deploy"]  # prepare kept its outputs and did not run again
        assert done.steps[1].outputs == {"seen": {"prepare": {"prepared": True}}}
        with pytest.raises(IllegalTransition):
            await engine.retry(tenant="acme", workflow_id=started.id)


async def test_a_callback_step_completes_once_through_its_token(tmp_path: Path, receiver: Receiver) -> None:
    after: list[Any] = []

    async def use(ctx: StepContext) -> dict[str, Any]:
        after.append(ctx.dependencies["external"])
        return {}

    definition = WorkflowDefinition(
        "provision",
        [Step("external", Callback(), timeout_seconds=60), Step("use", Call(use), depends_on=("external",))],
    )
    async with running_engine(tmp_path, [definition]) as engine:
        started = await engine.start(
            tenant="acme", service_slug="billing", definition="provision", inputs={"provisioning_url": receiver.url}
        )
        [notice] = await receiver.wait_for(1)
        assert notice.headers["idempotency-key"] == f"{started.id}:external"
        token = notice.body.pop("callback_token")
        assert notice.body == {
            "callback_url": CALLBACK_URL,
            "workflow_id": started.id,
            "step": "external",
            "service_slug": "billing",
            "inputs": {"provisioning_url": receiver.url},
        }
        waiting = await settled(engine, started.id, statuses=[WorkflowStatus.WAITING])
        assert statuses(waiting.steps) == {"external": StepStatus.WAITING, "use": StepStatus.PENDING}
        assert await engine.has_active_workflows("billing")

        with pytest.raises(CallbackTokenUnknown):
            await engine.callback("not-a-token", status="succeeded")
        with pytest.raises(InvalidInput):
            await engine.callback(token, status="maybe")
        receipt = await engine.callback(
            token, status="succeeded", endpoint="postgres://db.internal:5432/app", credentials={"password": "pw-1"}
        )
        assert (receipt.workflow_id, receipt.step) == (started.id, "external")
        for _ in range(3):
            with pytest.raises(CallbackTokenUsed):
                await engine.callback(token, status="succeeded", credentials={"password": "pw-2"})
        done = await settled(engine, started.id)
        assert done.workflow.status is WorkflowStatus.SUCCEEDED
        assert done.steps[0].outputs == {"endpoint": "postgres://db.internal:5432/app", "credentials": "[redacted]"}
        assert after == [{"endpoint": "postgres://db.internal:5432/app", "credentials": {"password": "pw-1"}}]
        assert await engine.reveal(tenant="acme", workflow_id=started.id, step="external") == {
            "endpoint": "postgres://db.internal:5432/app",
            "credentials": {"password": "pw-1"},
        }
        await asyncio.sleep(0.3)
        assert await executions(engine, started.id) == {"external": 1, "use": 1}  # advanced once
        assert not await engine.has_active_workflows("billing")


async def test_concurrent_callbacks_with_one_token_advance_the_step_once(tmp_path: Path, receiver: Receiver) -> None:
    definition = WorkflowDefinition("provision", [Step("external", Callback(), timeout_seconds=60)])
    async with running_engine(tmp_path, [definition]) as engine:
        started = await engine.start(
            tenant="acme", service_slug="billing", definition="provision", inputs={"provisioning_url": receiver.url}
        )
        [notice] = await receiver.wait_for(1)
        token = notice.body["callback_token"]
        outcomes = await asyncio.gather(
            *(engine.callback(token, status="succeeded", endpoint=f"e{n}") for n in range(5)), return_exceptions=True
        )
        accepted = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
        assert len(accepted) == 1
        assert all(isinstance(outcome, CallbackTokenUsed) for outcome in outcomes if outcome not in accepted)
        done = await settled(engine, started.id)
        assert done.workflow.status is WorkflowStatus.SUCCEEDED
        assert done.steps[0].outputs is not None
        assert done.steps[0].outputs["endpoint"].startswith("e")


async def test_a_token_expires_with_its_steps_timeout_and_a_cancel_stops_the_wait(
    tmp_path: Path, receiver: Receiver
) -> None:
    clock = ManualClock()
    definition = WorkflowDefinition("provision", [Step("external", Callback(), timeout_seconds=120)])
    async with running_engine(tmp_path, [definition], clock=clock) as engine:
        started = await engine.start(
            tenant="acme", service_slug="billing", definition="provision", inputs={"provisioning_url": receiver.url}
        )
        [notice] = await receiver.wait_for(1)
        await settled(engine, started.id, statuses=[WorkflowStatus.WAITING])
        clock.advance(120)
        with pytest.raises(CallbackTokenExpired):
            await engine.callback(notice.body["callback_token"], status="succeeded")
        with pytest.raises(WorkflowNotFound):
            await engine.cancel(tenant="globex", workflow_id=started.id)
        cancelled = await engine.cancel(tenant="acme", workflow_id=started.id)
        assert cancelled.status is WorkflowStatus.CANCELLED
        detail = await engine.get(tenant="acme", workflow_id=started.id)
        assert statuses(detail.steps) == {"external": StepStatus.CANCELLED}
        status = await DBOS.get_workflow_status_async(started.dbos_workflow_id)
        assert status is not None
        assert status.status == "CANCELLED"
        clock.set(clock.now().replace(year=2025))  # even a token that has not expired is dead once cancelled
        with pytest.raises(CallbackTokenUsed):
            await engine.callback(notice.body["callback_token"], status="succeeded")


async def test_a_cancelled_workflow_can_be_retried_and_completes(tmp_path: Path, receiver: Receiver) -> None:
    definition = WorkflowDefinition("provision", [Step("external", Callback(), timeout_seconds=60)])
    async with running_engine(tmp_path, [definition]) as engine:
        started = await engine.start(
            tenant="acme", service_slug="billing", definition="provision", inputs={"provisioning_url": receiver.url}
        )
        await receiver.wait_for(1)
        await settled(engine, started.id, statuses=[WorkflowStatus.WAITING])
        await engine.cancel(tenant="acme", workflow_id=started.id)
        await engine.retry(tenant="acme", workflow_id=started.id)
        second = (await receiver.wait_for(2))[1]
        await engine.callback(second.body["callback_token"], status="succeeded", endpoint="https://svc")
        done = await settled(engine, started.id)
        assert (done.workflow.status, done.workflow.run) == (WorkflowStatus.SUCCEEDED, 1)


async def test_a_callback_that_never_comes_fails_the_step_at_its_timeout(tmp_path: Path, receiver: Receiver) -> None:
    definition = WorkflowDefinition("provision", [Step("external", Callback(), timeout_seconds=1)])
    async with running_engine(tmp_path, [definition]) as engine:
        started = await engine.start(
            tenant="acme", service_slug="billing", definition="provision", inputs={"provisioning_url": receiver.url}
        )
        [notice] = await receiver.wait_for(1)
        done = await settled(engine, started.id)
        assert done.workflow.status is WorkflowStatus.FAILED
        assert done.steps[0].error == "no callback within 1 seconds"
        with pytest.raises((CallbackTokenUsed, CallbackTokenExpired)):
            await engine.callback(notice.body["callback_token"], status="succeeded")


async def test_a_failed_callback_fails_its_step_and_compensates(tmp_path: Path, receiver: Receiver) -> None:
    undone: list[str] = []

    async def reserve(ctx: StepContext) -> dict[str, Any]:
        return {"reserved": 1}

    async def release(ctx: CompensationContext) -> None:
        undone.append(ctx.step)

    definition = WorkflowDefinition(
        "provision",
        [
            Step("reserve", Call(reserve), compensation=release),
            Step("external", Callback(), depends_on=("reserve",), timeout_seconds=60),
        ],
    )
    async with running_engine(tmp_path, [definition]) as engine:
        started = await engine.start(
            tenant="acme", service_slug="billing", definition="provision", inputs={"provisioning_url": receiver.url}
        )
        [notice] = await receiver.wait_for(1)
        await engine.callback(notice.body["callback_token"], status="failed", message="no capacity in eu-west")
        done = await settled(engine, started.id)
        assert done.workflow.status is WorkflowStatus.COMPENSATED
        assert done.steps[1].error == "no capacity in eu-west"
        assert undone == ["reserve"]


async def test_http_steps_retry_what_a_retry_can_fix_and_stop_on_the_rest(tmp_path: Path) -> None:
    fast = RetryPolicy(attempts=3, initial_interval_seconds=0.05)
    async with Receiver.answering([503, 200, 404, 302]) as server:
        definition = WorkflowDefinition(
            "calls",
            [
                Step("flaky", HttpCall(url=server.url), retry=fast),
                Step("missing", HttpCall(url=lambda ctx: f"{server.url}?n=2"), depends_on=("flaky",), retry=fast),
            ],
        )
        redirect = WorkflowDefinition("redirect", [Step("moved", HttpCall(url=server.url), retry=fast)])
        async with running_engine(tmp_path, [definition, redirect]) as engine:
            started = await engine.start(tenant="acme", service_slug="billing", definition="calls")
            done = await settled(engine, started.id)
            assert done.workflow.status is WorkflowStatus.FAILED
            flaky, missing = done.steps
            assert (flaky.status, flaky.attempts, flaky.outputs) == (
                StepStatus.SUCCEEDED,
                2,
                {"status_code": 200, "body": {"received": True}},
            )
            assert (missing.status, missing.attempts, missing.error) == (
                StepStatus.FAILED,
                1,
                "PermanentStepError: HTTP 404",
            )
            assert server.requests[0].headers["idempotency-key"] == f"{started.id}:flaky"
            assert server.requests[0].body == {
                "workflow_id": started.id,
                "step": "flaky",
                "service_slug": "billing",
                "inputs": {},
            }
            moved = await engine.start(tenant="acme", service_slug="billing", definition="redirect")
            done = await settled(engine, moved.id)
            assert done.steps[0].error == "PermanentStepError: HTTP 302: redirects are not followed"
            assert len(server.requests) == 4


async def test_outbound_urls_go_through_the_policy(tmp_path: Path) -> None:
    definition = WorkflowDefinition("provision", [Step("external", Callback(), timeout_seconds=5)])
    async with running_engine(tmp_path, [definition]) as engine:
        for url in ("http://10.0.0.5/provision", "file:///etc/passwd", None):
            inputs = {"provisioning_url": url} if url else {}
            started = await engine.start(tenant="acme", service_slug="billing", definition="provision", inputs=inputs)
            done = await settled(engine, started.id)
            assert done.workflow.status is WorkflowStatus.FAILED
            assert done.steps[0].attempts == 1  # refused for good, not retried
        assert "no 'provisioning' endpoint" in str(done.steps[0].error)


async def test_tenants_see_only_their_own_workflows(tmp_path: Path) -> None:
    async def ok(ctx: StepContext) -> dict[str, Any]:
        return {}

    definition = WorkflowDefinition("tiny", [Step("only", Call(ok))])
    async with running_engine(tmp_path, [definition]) as engine:
        mine = await engine.start(tenant="acme", service_slug="billing", definition="tiny")
        theirs = await engine.start(tenant="globex", service_slug="billing", definition="tiny")
        await settled(engine, mine.id)
        await settled(engine, theirs.id, tenant="globex")
        for call in (
            engine.get(tenant="acme", workflow_id=theirs.id),
            engine.cancel(tenant="acme", workflow_id=theirs.id),
            engine.retry(tenant="acme", workflow_id=theirs.id),
            engine.reveal(tenant="acme", workflow_id=theirs.id, step="only"),
        ):
            with pytest.raises(WorkflowNotFound):
                await call
        page = await engine.list_workflows(WorkflowQuery(tenant="acme"))
        assert [item.id for item in page.items] == [mine.id]
        latest = await engine.status(tenant="acme", service_slug="billing")
        assert latest is not None
        assert latest.id == mine.id
        assert await engine.status(tenant="initech", service_slug="billing") is None


async def test_starts_are_checked_before_anything_is_recorded(tmp_path: Path) -> None:
    async def ok(ctx: StepContext) -> dict[str, Any]:
        return {}

    definition = WorkflowDefinition("tiny", [Step("only", Call(ok))], inputs=dict[str, int])
    async with running_engine(tmp_path, [definition]) as engine:
        with pytest.raises(UnknownDefinition):
            await engine.start(tenant="acme", service_slug="billing", definition="nope")
        with pytest.raises(InvalidInput):
            await engine.start(tenant="acme", service_slug="billing", definition="tiny", inputs={"a": "x"})
        with pytest.raises(InvalidInput):
            await engine.start(tenant="acme", service_slug="Not A Slug", definition="tiny")
        assert (await engine.list_workflows(WorkflowQuery(tenant="acme"))).items == []


async def test_no_table_holds_a_credential_or_a_token_in_plain_text(tmp_path: Path, receiver: Receiver) -> None:
    secret = "s3cr3t-Pa55w0rd-never-stored"

    async def hands_out(ctx: StepContext) -> dict[str, Any]:
        return {"credentials": {"api_key": secret + "-from-a-step"}}

    definition = WorkflowDefinition(
        "provision",
        [
            Step("key", Call(hands_out)),
            Step("external", Callback(), depends_on=("key",), timeout_seconds=60),
        ],
    )
    async with running_engine(tmp_path, [definition]) as engine:
        started = await engine.start(
            tenant="acme", service_slug="billing", definition="provision", inputs={"provisioning_url": receiver.url}
        )
        [notice] = await receiver.wait_for(1)
        token = notice.body["callback_token"]
        await engine.callback(token, status="succeeded", endpoint="https://db", credentials={"password": secret})
        await settled(engine, started.id)
        detail = await engine.get(tenant="acme", workflow_id=started.id)
        assert secret not in repr(detail)
        page = await engine.list_workflows(WorkflowQuery(tenant="acme"))
        assert secret not in repr(page)
        assert (await engine.reveal(tenant="acme", workflow_id=started.id, step="external"))["credentials"] == {
            "password": secret
        }
    contents = files_in(tmp_path)
    assert set(contents) >= {"registry.db", "dbos.sqlite"}
    assert b"$sealed" in contents["registry.db"]  # the data is there, sealed
    assert b"$sealed" in contents["dbos.sqlite"]
    for name, raw in contents.items():
        assert secret.encode() not in raw, name
        assert token.encode() not in raw, name


def files_in(directory: Path) -> dict[str, bytes]:
    """Every file of ``directory`` (databases, write-ahead logs), raw."""
    return {path.name: path.read_bytes() for path in directory.iterdir() if path.is_file()}
