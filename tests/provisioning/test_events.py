"""Provisioning writes the five workflow topics into the registry's own change log, on memory, SQLite and PostgreSQL.

Each topic is appended by the read-model write that causes it, in the same atomic write, and only when that write
applied: a replayed write (DBOS re-running a workflow after a restart) appends nothing. Workflow and service events
share one sequence of ids, and every append wakes the registry's ``on_events`` hook. No event carries a callback token.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest
from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from litestar_registry import RegistryConfig, RegistryPlugin
from litestar_registry.core.auth import Principal, Role
from litestar_registry.core.clock import ManualClock
from litestar_registry.core.errors import IllegalTransition, StaleWrite
from litestar_registry.core.events import (
    ChangeEvent,
    Topic,
    WorkflowFailed,
    WorkflowStarted,
    WorkflowStepFailed,
    WorkflowStepWaiting,
    WorkflowSucceeded,
    payload_of,
)
from litestar_registry.core.models import Registration
from litestar_registry.core.ports import ServiceStore
from litestar_registry.core.registry import Registry
from litestar_registry.plugin import registry_policy
from litestar_registry.provisioning import (
    Call,
    Callback,
    CompensationContext,
    PermanentStepError,
    ProvisioningUnavailable,
    RetryPolicy,
    Step,
    StepContext,
    StepStatus,
    WorkflowDefinition,
    WorkflowStatus,
)
from litestar_registry.provisioning.service import ProvisioningService
from litestar_registry.provisioning.states import StepEvent, WorkflowEvent
from litestar_registry.provisioning.store import Applied, MemoryProvisioningStore, ProvisioningStore
from litestar_registry.provisioning.store.sqlalchemy import SQLAlchemyProvisioningStore
from litestar_registry.provisioning.tokens import hash_token
from litestar_registry.store import create_store
from litestar_registry.store.memory import MemoryServiceStore
from litestar_registry.store.sqlalchemy import SQLAlchemyServiceStore
from tests.backends import POSTGRES_URL, REDIS_URL
from tests.clients import serve
from tests.provisioning.apps import ACME, PREFIX, SERVICE, clear, settings
from tests.provisioning.conftest import eventually, postgres_schema, sqlite_url
from tests.provisioning.engines import running_engine, settled
from tests.provisioning.receiver import Receiver
from tests.provisioning.test_store import T0, schange, steps_of, wchange, workflow

T = Topic
OWNER = Principal(account="team", role=Role.SERVICE)
BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


class Woken:
    """An ``on_events`` hook that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1


@dataclass
class Shared:
    """A registry store and the provisioning read model that shares its log, as the plugin pairs them."""

    store: ServiceStore
    read_model: ProvisioningStore
    woken: Woken
    cursor: int = 0
    seen: list[ChangeEvent] = field(default_factory=list)

    async def log(self) -> list[ChangeEvent]:
        """Every event of the log, oldest first."""
        page = await self.store.read_events(0, limit=1000)
        return page.items

    async def new(self) -> list[tuple[Topic, str]]:
        """(topic, subject) of what was appended since the last call."""
        page = await self.store.read_events(self.cursor, limit=1000)
        if page.items:
            self.cursor = page.items[-1].id
        return [(event.topic, event.subject) for event in page.items]


@asynccontextmanager
async def shared(backend: str, tmp_path: Path) -> AsyncIterator[Shared]:
    """The plugin's pairing for ``backend``: the read model on the registry store's engine (or its memory log)."""
    woken = Woken()
    if backend == "memory":
        memory = MemoryServiceStore()
        async with MemoryProvisioningStore(memory, on_events=woken) as read_model:
            yield Shared(memory, read_model, woken)
        return
    async with postgres_schema() if backend == "postgres" else _nothing() as options:
        url = POSTGRES_URL if backend == "postgres" else sqlite_url(tmp_path)
        store = SQLAlchemyServiceStore(url, create_schema=True, engine_options=options)
        async with store, SQLAlchemyProvisioningStore(engine=store.engine, on_events=woken) as read_model:
            yield Shared(store, read_model, woken)


@asynccontextmanager
async def _nothing() -> AsyncIterator[dict[str, Any]]:
    yield {}


@pytest.fixture(params=BACKENDS)
async def pair(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Shared]:
    async with shared(request.param, tmp_path) as opened:
        yield opened


def registry_over(store: ServiceStore, clock: ManualClock, hook: Woken | None = None) -> Registry:
    config = RegistryConfig(store=store, clock=clock, auto_approve_all=True)
    return Registry(store, registry_policy(config), clock=clock, on_events=hook)


def registration(slug: str) -> Registration:
    return Registration(slug=slug, name=slug.title(), version="1.0", ttl_seconds=30)


def ref(event: ChangeEvent) -> dict[str, Any]:
    """The fields every workflow payload repeats, checked against the event's own subject and tenant."""
    assert event.tenant is not None
    return {"workflow_id": event.subject, "tenant": event.tenant, "service_slug": "billing"}


# --- the store's rules, without DBOS ----------------------------------------------------------------------------


async def test_each_write_appends_its_topic_once_and_replays_stale_and_illegal_writes_nothing(pair: Shared) -> None:
    read_model = pair.read_model
    record = workflow(T0)
    await read_model.create_workflow(record, steps_of(record, "a", "b"))
    assert await pair.new() == [(T.WORKFLOW_STARTED, record.id)]
    assert await read_model.apply_workflow(record.id, wchange(WorkflowEvent.START, 2)) is Applied.APPLIED
    assert await read_model.apply_step(record.id, "a", schange(StepEvent.START, 3)) is Applied.APPLIED
    assert await pair.new() == []  # running is not a topic
    expires = T0 + timedelta(minutes=10)
    wait = schange(StepEvent.WAIT, 4, expires_at=expires)
    assert await read_model.apply_step(record.id, "a", wait) is Applied.APPLIED
    assert await read_model.apply_step(record.id, "a", wait) is Applied.REPLAYED
    with pytest.raises(StaleWrite):
        await read_model.apply_step(record.id, "a", schange(StepEvent.FAIL, 5, run=1))
    with pytest.raises(IllegalTransition):
        await read_model.apply_step(record.id, "b", schange(StepEvent.FAIL, 5))
    assert await pair.new() == [(T.WORKFLOW_STEP_WAITING, record.id)]  # once, however often it is written
    await read_model.apply_step(record.id, "a", schange(StepEvent.FAIL, 5, error="no callback"))
    await read_model.apply_step(record.id, "b", schange(StepEvent.SKIP, 6))
    await read_model.apply_workflow(record.id, wchange(WorkflowEvent.COMPENSATE, 7, error="step 'a' failed"))
    await read_model.apply_workflow(record.id, wchange(WorkflowEvent.COMPENSATED, 8))
    assert await read_model.apply_workflow(record.id, wchange(WorkflowEvent.COMPENSATED, 8)) is Applied.REPLAYED
    assert await pair.new() == [(T.WORKFLOW_STEP_FAILED, record.id), (T.WORKFLOW_FAILED, record.id)]

    retried, _ = await read_model.retry_workflow(record.id, tenant="acme", at=T0, dbos_workflow_id="x:1")
    await read_model.apply_workflow(record.id, wchange(WorkflowEvent.START, retried.version + 1, run=1))
    await read_model.cancel_workflow(record.id, tenant="acme", at=T0)
    assert await pair.new() == [(T.WORKFLOW_STARTED, record.id), (T.WORKFLOW_FAILED, record.id)]
    done = workflow(T0)
    await read_model.create_workflow(done, steps_of(done, "only"))
    await read_model.apply_workflow(done.id, wchange(WorkflowEvent.START, 2))
    await read_model.apply_workflow(done.id, wchange(WorkflowEvent.SUCCEED, 3))
    assert await pair.new() == [(T.WORKFLOW_STARTED, done.id), (T.WORKFLOW_SUCCEEDED, done.id)]

    stuck = workflow(T0)
    await read_model.create_workflow(stuck, steps_of(stuck, "only"))
    await read_model.apply_workflow(stuck.id, wchange(WorkflowEvent.START, 2))
    await read_model.apply_step(stuck.id, "only", schange(StepEvent.START, 3))
    await read_model.apply_step(stuck.id, "only", schange(StepEvent.SUCCEED, 4, completed_seq=1))
    await read_model.apply_workflow(stuck.id, wchange(WorkflowEvent.COMPENSATE, 5, error="step 'x' failed"))
    await read_model.apply_step(stuck.id, "only", schange(StepEvent.COMPENSATE, 6))
    undo_failed = schange(StepEvent.COMPENSATION_FAILED, 7, error="compensation failed: gone")
    await read_model.apply_step(stuck.id, "only", undo_failed)
    await read_model.apply_workflow(stuck.id, wchange(WorkflowEvent.FAIL, 8, error="a compensation failed"))
    assert await pair.new() == [
        (T.WORKFLOW_STARTED, stuck.id),
        (T.WORKFLOW_STEP_FAILED, stuck.id),  # its compensation failed: the step is failed for good
        (T.WORKFLOW_FAILED, stuck.id),
    ]

    events = await pair.log()
    assert [event.id for event in events] == list(range(1, 12))
    assert pair.woken.calls == 11  # once per write that appended, never for the rest
    base = {"workflow_id": record.id, "tenant": "acme", "service_slug": "billing", "definition": "provision"}
    assert [payload_of(event) for event in events] == [
        WorkflowStarted(**base, steps=("a", "b")),
        WorkflowStepWaiting(**base, step="a", expires_at=expires),
        WorkflowStepFailed(**base, step="a", error="no callback"),
        WorkflowFailed(**base, error="step 'a' failed"),  # compensated: the failure that caused it
        WorkflowStarted(**base, steps=("a", "b")),  # the retry runs again what did not succeed
        WorkflowFailed(**base, cancelled=True),
        WorkflowStarted(**{**base, "workflow_id": done.id}, steps=("only",)),
        WorkflowSucceeded(**{**base, "workflow_id": done.id}),
        WorkflowStarted(**{**base, "workflow_id": stuck.id}, steps=("only",)),
        WorkflowStepFailed(**{**base, "workflow_id": stuck.id}, step="only", error="compensation failed: gone"),
        WorkflowFailed(**{**base, "workflow_id": stuck.id}, error="a compensation failed"),
    ]
    assert all((event.tenant, event.occurred_at) == ("acme", T0) for event in events)


async def test_concurrent_registry_and_workflow_writes_share_one_sequence_of_ids(pair: Shared) -> None:
    registry = registry_over(pair.store, ManualClock(T0))

    async def provision(n: int) -> str:
        record = workflow(T0 + timedelta(milliseconds=n))
        await pair.read_model.create_workflow(record, steps_of(record, "only"))
        await pair.read_model.apply_workflow(record.id, wchange(WorkflowEvent.START, 2))
        await pair.read_model.apply_workflow(record.id, wchange(WorkflowEvent.SUCCEED, 3))
        return record.id

    count = 12
    results = await asyncio.gather(
        *(registry.register(registration(f"svc-{n}"), OWNER) for n in range(count)),
        *(provision(n) for n in range(count)),
    )
    workflow_ids = results[count:]
    events = await pair.log()
    assert [event.id for event in events] == list(range(1, 3 * count + 1))  # no gap, no duplicate
    topics = [event.topic for event in events]
    assert (topics.count(T.SERVICE_REGISTERED), topics.count(T.WORKFLOW_STARTED)) == (count, count)
    assert topics.count(T.WORKFLOW_SUCCEEDED) == count
    for workflow_id in workflow_ids:
        assert [event.topic for event in events if event.subject == workflow_id] == [
            T.WORKFLOW_STARTED,
            T.WORKFLOW_SUCCEEDED,
        ]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_change_whose_event_cannot_be_appended_is_not_made(backend: str, tmp_path: Path) -> None:
    # The read model writes in real transactions also on the registry's own SQLite engine, whose connections start
    # in autocommit: without the log, no change.
    async with shared(backend, tmp_path) as pair:
        kept = workflow(T0)
        await pair.read_model.create_workflow(kept, steps_of(kept, "a"))
        await pair.read_model.apply_workflow(kept.id, wchange(WorkflowEvent.START, 2))
        await pair.read_model.apply_step(kept.id, "a", schange(StepEvent.START, 3))
        engine = cast("SQLAlchemyServiceStore", pair.store).engine
        async with engine.connect() as conn:
            await conn.execute(text("ALTER TABLE registry_events RENAME TO registry_events_away"))
            await conn.commit()
        lost = workflow(T0 + timedelta(seconds=1))
        with pytest.raises(DBAPIError):
            await pair.read_model.create_workflow(lost, steps_of(lost, "a"))
        with pytest.raises(DBAPIError):
            await pair.read_model.apply_step(kept.id, "a", schange(StepEvent.FAIL, 4, error="x"))
        with pytest.raises(DBAPIError):
            await pair.read_model.cancel_workflow(kept.id, tenant="acme", at=T0)
        assert await pair.read_model.get_workflow(lost.id) is None
        assert (await pair.read_model.get_workflow(kept.id)) == msgspec.structs.replace(
            kept, status=WorkflowStatus.RUNNING, version=3, started_at=T0
        )
        assert [step.status for step in await pair.read_model.get_steps(kept.id)] == [StepStatus.RUNNING]
        async with engine.connect() as conn:
            await conn.execute(text("ALTER TABLE registry_events_away RENAME TO registry_events"))
            await conn.commit()
        assert [event.topic for event in await pair.log()] == [T.WORKFLOW_STARTED]
        assert pair.woken.calls == 1


# --- the engine on real DBOS ------------------------------------------------------------------------------------


async def _ok(ctx: StepContext) -> dict[str, Any]:
    return {"done": ctx.step}


async def _broken(ctx: StepContext) -> dict[str, Any]:
    raise PermanentStepError("quota exceeded")


async def _release(ctx: CompensationContext) -> None:
    return None


ONCE = RetryPolicy(attempts=1)
DEFINITIONS = [
    WorkflowDefinition("quick", [Step("only", Call(_ok), retry=ONCE)]),
    WorkflowDefinition(
        "undo",
        [
            Step("reserve", Call(_ok), compensation=_release, retry=ONCE),
            Step("deploy", Call(_broken), depends_on=("reserve",), retry=ONCE),
        ],
    ),
    WorkflowDefinition("provision", [Step("external", Callback(), timeout_seconds=60, retry=ONCE)]),
]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_workflows_walk_their_topics_between_the_services_in_one_log(
    backend: str, tmp_path: Path, receiver: Receiver
) -> None:
    clock = ManualClock(T0)
    async with shared(backend, tmp_path) as pair:
        registry = registry_over(pair.store, clock, pair.woken)
        async with running_engine(tmp_path, DEFINITIONS, store=pair.read_model, clock=clock) as engine:

            async def start(definition: str) -> str:
                inputs = {"provisioning_url": receiver.url} if definition == "provision" else {}
                record = await engine.start(tenant="acme", service_slug="billing", definition=definition, inputs=inputs)
                return record.id

            async def token(count: int) -> str:
                notice = (await receiver.wait_for(count))[count - 1]
                await settled(engine, notice.body["workflow_id"], statuses=[WorkflowStatus.WAITING])
                value: str = notice.body["callback_token"]
                return value

            await registry.register(registration("billing"), OWNER)
            quick = await start("quick")
            await settled(engine, quick)
            undo = await start("undo")
            assert (await settled(engine, undo)).workflow.status is WorkflowStatus.COMPENSATED
            waits = await start("provision")
            first = await token(1)
            await registry.register(registration("ledger"), OWNER)  # a service change while the step waits
            await engine.callback(first, status="succeeded", endpoint="https://db", credentials={"pw": "hunter2"})
            await settled(engine, waits)
            cancelled = await start("provision")
            second = await token(2)
            await engine.cancel(tenant="acme", workflow_id=cancelled)
            await engine.retry(tenant="acme", workflow_id=cancelled)
            third = await token(3)
            await engine.callback(third, status="succeeded", endpoint="https://db", credentials={"pw": "hunter2"})
            assert (await settled(engine, cancelled)).workflow.run == 1
            await registry.deregister("billing", OWNER)

        events = await pair.log()
        assert [(event.topic, event.subject) for event in events] == [
            (T.SERVICE_REGISTERED, "billing"),
            (T.WORKFLOW_STARTED, quick),
            (T.WORKFLOW_SUCCEEDED, quick),
            (T.WORKFLOW_STARTED, undo),
            (T.WORKFLOW_STEP_FAILED, undo),
            (T.WORKFLOW_FAILED, undo),
            (T.WORKFLOW_STARTED, waits),
            (T.WORKFLOW_STEP_WAITING, waits),
            (T.SERVICE_REGISTERED, "ledger"),
            (T.WORKFLOW_SUCCEEDED, waits),
            (T.WORKFLOW_STARTED, cancelled),
            (T.WORKFLOW_STEP_WAITING, cancelled),
            (T.WORKFLOW_FAILED, cancelled),
            (T.WORKFLOW_STARTED, cancelled),  # the retry's run
            (T.WORKFLOW_STEP_WAITING, cancelled),
            (T.WORKFLOW_SUCCEEDED, cancelled),
            (T.SERVICE_DEREGISTERED, "billing"),
        ]
        assert [event.id for event in events] == list(range(1, len(events) + 1))
        assert pair.woken.calls == len(events)  # the registry's writes and the read model's, each woke the hook

        for event in events:  # every payload fits its topic's schema; a workflow's names its tenant
            payload = msgspec.structs.asdict(payload_of(event))
            if event.topic.startswith("workflow."):
                assert (payload["tenant"], payload["workflow_id"]) == (event.tenant, event.subject)
        workflow_events = [event for event in events if event.topic.startswith("workflow.")]
        assert {event.tenant for event in workflow_events} == {"acme"}
        assert {event.tenant for event in events if event not in workflow_events} == {None}
        by_id = {event.id: event for event in events}
        assert payload_of(by_id[5]) == WorkflowStepFailed(
            **ref(by_id[5]), definition="undo", step="deploy", error="PermanentStepError: quota exceeded"
        )
        assert payload_of(by_id[6]) == WorkflowFailed(
            **ref(by_id[6]), definition="undo", error="step 'deploy' failed: PermanentStepError: quota exceeded"
        )
        assert payload_of(by_id[8]) == WorkflowStepWaiting(
            **ref(by_id[8]), definition="provision", step="external", expires_at=T0 + timedelta(seconds=60)
        )
        assert payload_of(by_id[13]) == WorkflowFailed(**ref(by_id[13]), definition="provision", cancelled=True)
        assert payload_of(by_id[14]) == WorkflowStarted(**ref(by_id[14]), definition="provision", steps=("external",))
        assert payload_of(by_id[16]) == WorkflowSucceeded(**ref(by_id[16]), definition="provision")

        raw = msgspec.json.encode(events).decode()
        for handed_out in (first, second, third):
            assert handed_out not in raw
            assert hash_token(handed_out) not in raw
        assert "callback_token" not in raw
        assert "hunter2" not in raw  # nor the credentials a callback delivered


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_workflow_replayed_after_a_restart_appends_nothing_twice(
    backend: str, tmp_path: Path, receiver: Receiver
) -> None:
    definition = WorkflowDefinition(
        "provision",
        [
            Step("prepare", Call(_ok), retry=ONCE),
            Step("external", Callback(), depends_on=("prepare",), timeout_seconds=300, retry=ONCE),
            Step("finish", Call(_ok), depends_on=("external",), retry=ONCE),
        ],
    )
    clock = ManualClock(T0)
    async with shared(backend, tmp_path) as pair:
        async with running_engine(tmp_path, [definition], store=pair.read_model, clock=clock) as engine:
            started = await engine.start(
                tenant="acme", service_slug="billing", definition="provision", inputs={"provisioning_url": receiver.url}
            )
            [notice] = await receiver.wait_for(1)
            await settled(engine, started.id, statuses=[WorkflowStatus.WAITING])
        # The app stopped while the step waited; its DBOS workflow stays pending, and the next launch replays it from
        # the start: every write up to the wait comes again, with the versions it had.
        assert await pair.new() == [(T.WORKFLOW_STARTED, started.id), (T.WORKFLOW_STEP_WAITING, started.id)]
        outcomes = observe(pair.read_model)
        async with running_engine(tmp_path, [definition], store=pair.read_model, clock=clock) as engine:
            await eventually(lambda: _true(outcomes.count(Applied.REPLAYED) == 6))
            await engine.callback(notice.body["callback_token"], status="succeeded", endpoint="https://db")
            done = await settled(engine, started.id)
        assert done.workflow.status is WorkflowStatus.SUCCEEDED
        assert outcomes[:6] == [Applied.REPLAYED] * 6  # start, prepare started and succeeded, the wait, ...
        assert Applied.APPLIED in outcomes[6:]
        assert len(receiver.requests) == 1  # the notification was not sent again, no second token
        assert await pair.new() == [(T.WORKFLOW_SUCCEEDED, started.id)]
        assert [event.id for event in await pair.log()] == [1, 2, 3]


async def _true(value: bool) -> bool:
    return value


def observe(store: ProvisioningStore) -> list[Applied]:
    """Record what becomes of every runner's write to ``store`` from now on (the store itself is untouched)."""
    outcomes: list[Applied] = []

    def recording(write: Callable[..., Awaitable[Applied]]) -> Callable[..., Awaitable[Applied]]:
        async def recorded(*args: Any, **kwargs: Any) -> Applied:
            outcome = await write(*args, **kwargs)
            outcomes.append(outcome)
            return outcome

        return recorded

    store.apply_workflow = recording(store.apply_workflow)  # type: ignore[method-assign]
    store.apply_step = recording(store.apply_step)  # type: ignore[method-assign]
    return outcomes


# --- the plugin -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_plugin_appends_workflow_topics_to_its_store_and_wakes_the_registry_hook(
    backend: str, tmp_path: Path, receiver: Receiver
) -> None:
    overrides: dict[str, Any] = {"store_url": "memory://"} if backend == "memory" else {}
    plugin = RegistryPlugin(
        RegistryConfig(**settings("sqlite" if backend == "memory" else backend, tmp_path, **overrides))
    )
    woken = Woken()
    plugin.registry.on_events = woken  # as the change feed wires itself, after provisioning was built
    async with serve(Litestar(plugins=[plugin])) as client:
        await clear(plugin)  # on PostgreSQL, the instance registered itself in the registry at start: gone too
        woken.calls = 0
        try:
            body = {"slug": "billing", "name": "Billing", "version": "1"}
            body["endpoints"] = [{"name": "provisioning", "url": receiver.url}]
            assert (await client.post("/api/v1/registry/register", json=body, headers=SERVICE)).status_code == 201
            start = {"service_slug": "billing", "definition": "provision"}
            response = await client.post(f"{PREFIX}/workflows", json=start, headers=ACME)
            workflow_id = response.json()["data"]["id"]
            [notice] = await receiver.wait_for(1)
            callback = {"callback_token": notice.body["callback_token"], "status": "succeeded", "endpoint": "https://x"}
            assert (await client.post(f"{PREFIX}/callback", json=callback)).status_code == 200

            async def succeeded() -> bool:
                detail = await client.get(f"{PREFIX}/workflows/{workflow_id}", headers=ACME)
                return bool(detail.json()["data"]["status"] == "succeeded")

            await eventually(succeeded)
            events = (await plugin.store.read_events(0, limit=100)).items
            assert [(event.topic, event.subject) for event in events] == [
                (T.SERVICE_REGISTERED, "billing"),
                (T.WORKFLOW_STARTED, workflow_id),
                (T.WORKFLOW_STEP_WAITING, workflow_id),
                (T.WORKFLOW_SUCCEEDED, workflow_id),
            ]
            assert [event.id for event in events] == [1, 2, 3, 4]
            assert woken.calls == 4
            assert payload_of(events[1]) == WorkflowStarted(
                **ref(events[1]), definition="provision", steps=("allocate", "external", "finish")
            )
        finally:
            await clear(plugin)


async def test_provisioning_still_refuses_a_redis_registry_store(tmp_path: Path) -> None:
    # REGISTRY_STORE_URL=redis://... is refused by the configuration (test_settings.py); a store object is refused here.
    store = create_store(REDIS_URL)  # not opened: the refusal comes before any connection
    config = RegistryConfig(**settings("sqlite", tmp_path, store=store))
    service = ProvisioningService(config, registry_over(store, ManualClock(T0)), store)
    with pytest.raises(ProvisioningUnavailable, match="not in a RedisServiceStore"):
        service._read_model_store()


async def test_a_failing_hook_is_logged_and_the_write_stands(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise RuntimeError("the feed is down")

    log = MemoryServiceStore()
    read_model = MemoryProvisioningStore(log, on_events=broken)
    record = workflow(T0)
    await read_model.create_workflow(record, steps_of(record, "a"))
    assert await read_model.get_workflow(record.id) == record
    assert [event.topic for event in (await log.read_events()).items] == [T.WORKFLOW_STARTED]
    assert "on_events hook failed" in caplog.text
