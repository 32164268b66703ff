"""The provisioning engine: one generic DBOS workflow that runs any registered definition, and the calls around it.

:class:`ProvisioningEngine` is what the routes call (start, read, cancel, retry, callback). Each run of a workflow is
one DBOS workflow, ``litestar_registry.provision``, whose id is ``{workflow_id}:{run}``. The runner inside it:

* starts every step whose dependencies succeeded, in definition order, and waits for the first unit of work to
  finish with ``DBOS.asyncio_wait`` (which checkpoints which ones finished, so a replay after a crash takes the same
  path whatever the timing); step ids are drawn with ``DBOS.reserve_step`` when a unit is created, and the ids of
  ``recv``/``sleep`` units are drawn at once (the task is started before anything else happens), so the order of
  DBOS operations is deterministic;
* runs each attempt of a step as one DBOS step (checkpointed, with DBOS's per-attempt timeout), and waits between
  attempts with a durable ``DBOS.sleep_async`` of the policy's capped exponential backoff (DBOS's own retries cap
  every interval at a fixed hour, and lose their count on a crash);
* for a callback step, hands out a token in one DBOS step and waits for the callback with ``DBOS.recv_async`` and the
  step's timeout (a durable wait: it survives a restart);
* when a step fails for good, lets running attempts finish, stops the waits, skips what never started, and runs the
  compensations of the completed steps in reverse order of completion.

The read model is written from the runner as it goes. DBOS replays a workflow from the start after a crash, so every
write carries a version drawn from a deterministic counter and the stores drop a write they already have. The stores
append the workflow topics of the change log in the same atomic write as the change (see
:mod:`litestar_registry.provisioning.store.base`), so a replayed write appends nothing a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
import msgspec
from dbos import DBOS, SetWorkflowID

from litestar_registry.core.clock import Clock, SystemClock
from litestar_registry.core.errors import IllegalTransition, InvalidInput, StaleWrite
from litestar_registry.core.validation import check_slug, check_storable
from litestar_registry.outbound.http import OutboundHTTP
from litestar_registry.outbound.policy import OutboundURLPolicy
from litestar_registry.provisioning.crypto import CredentialCipher
from litestar_registry.provisioning.definitions import (
    Call,
    Callback,
    CompensationContext,
    DefinitionRegistry,
    HttpCall,
    PermanentStepError,
    Step,
    StepContext,
    WorkflowDefinition,
)
from litestar_registry.provisioning.errors import CallbackTokenUsed, OutboundURLRefused, WorkflowNotFound
from litestar_registry.provisioning.models import (
    StepChange,
    StepExecution,
    StepRecord,
    WorkflowChange,
    WorkflowPage,
    WorkflowQuery,
    WorkflowRecord,
    new_workflow_id,
)
from litestar_registry.provisioning.runtime import DBOSRuntime
from litestar_registry.provisioning.states import (
    StepEvent,
    StepStatus,
    WorkflowEvent,
    WorkflowStatus,
)
from litestar_registry.provisioning.store.base import Applied, ProvisioningStore
from litestar_registry.provisioning.tokens import (
    CallbackTokenRecord,
    TokenState,
    classify,
    hash_token,
    issue_token,
    raise_for,
)

__all__ = (
    "WORKFLOW_NAME",
    "CallbackReceipt",
    "ProvisioningEngine",
    "ServiceDirectory",
    "WorkflowDetail",
)

WORKFLOW_NAME = "litestar_registry.provision"
"""The one DBOS workflow that runs every definition (prefixed: a host's own DBOS workflows keep their names)."""
_CALLBACK_STATUSES = frozenset({"succeeded", "failed"})
_MAX_ERROR = 2000
_MAX_BODY_TEXT = 65_536
_NOTIFY_TIMEOUT = 30.0
"""Longest a callback step's notification request may take (each attempt)."""

_active: ProvisioningEngine | None = None


class ServiceDirectory(Protocol):
    """Where a callback step finds the service's endpoint (the registry, in the plugin)."""

    async def endpoint_url(self, service_slug: str, name: str) -> str | None:
        """The URL of the service's registered endpoint called ``name``, or ``None``."""
        ...


class CallbackReceipt(msgspec.Struct, kw_only=True, frozen=True):
    """What an accepted callback reached."""

    workflow_id: str
    step: str
    status: str


class WorkflowDetail(msgspec.Struct, kw_only=True, frozen=True):
    """A workflow with every step, credentials redacted."""

    workflow: WorkflowRecord
    steps: list[StepRecord]


class RunSpec(msgspec.Struct, kw_only=True, frozen=True):
    """The input of one run (what DBOS records for the workflow): plain JSON, rebuilt from the read model."""

    workflow_id: str
    tenant: str
    service_slug: str
    definition: str
    inputs: dict[str, Any]
    run: int
    base_version: int
    done: dict[str, dict[str, Any]] = {}
    """Outputs (credentials sealed) of steps that succeeded in an earlier run: not run again."""
    done_order: list[str] = []
    """Those steps in the order they completed."""


def dbos_workflow_id(workflow_id: str, run: int) -> str:
    """The DBOS workflow id of one run of a provisioning workflow."""
    return f"{workflow_id}:{run}"


def _engine() -> ProvisioningEngine:
    if _active is None:
        raise RuntimeError("no provisioning engine is active in this process (ProvisioningEngine.open was not called)")
    return _active


def _short(text: str) -> str:
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


def _describe(exc: BaseException) -> str:
    message = str(exc)
    return _short(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


class ProvisioningEngine:
    """Starts, reads, cancels and retries provisioning workflows, and accepts their callbacks.

    Args:
        definitions: The definitions the host registered (a registry, or the definitions themselves).
        store: The read model.
        cipher: Seals the credentials that callbacks (and ``credentials`` outputs) carry.
        callback_url: The public URL of ``POST /provisioning/callback``, sent to external services.
        url_policy: Where HTTP and callback steps may send requests.
        services: Finds a service's ``provisioning`` endpoint; without it, only ``inputs.provisioning_url`` is used.
        clock: Time for records and token expiry.
        transport: An httpx transport for outbound requests (tests); the network otherwise.
    """

    def __init__(
        self,
        *,
        definitions: DefinitionRegistry | Iterable[WorkflowDefinition],
        store: ProvisioningStore,
        cipher: CredentialCipher,
        callback_url: str,
        url_policy: OutboundURLPolicy | None = None,
        services: ServiceDirectory | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.definitions = (
            definitions if isinstance(definitions, DefinitionRegistry) else DefinitionRegistry(definitions)
        )
        self.store = store
        self.cipher = cipher
        self.callback_url = callback_url
        self.http = OutboundHTTP(url_policy or OutboundURLPolicy(), transport=transport)
        self.services = services
        self.clock: Clock = clock or SystemClock()
        self.runtime: DBOSRuntime | None = None
        self._tasks: dict[str, asyncio.Task[Any]] = {}

    # Lifecycle

    async def open(self, runtime: DBOSRuntime) -> None:
        """Make this the process's engine and start DBOS (which recovers this executor's workflows).

        Then finish what a crash interrupted: callbacks claimed but not delivered, runs recorded but never started.
        """
        global _active
        if _active is not None and _active is not self:
            raise RuntimeError("another provisioning engine is active in this process (one DBOS per process)")
        _active = self
        self.runtime = runtime
        try:
            await runtime.start()
            for token in await self.store.undelivered_tokens():
                await self._deliver(token)
            for workflow in await self._pending_without_runner():
                await self._launch(workflow)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop this process's runners (their DBOS workflows stay pending: the next start recovers them), stop DBOS."""
        global _active
        tasks = [task for task in self._tasks.values() if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self.runtime is not None:
            await self.runtime.stop()
            self.runtime = None
        if _active is self:
            _active = None

    @property
    def executor_id(self) -> str:
        """The DBOS executor this process runs workflows under."""
        return str(DBOS.executor_id)

    # Commands

    async def start(
        self, *, tenant: str, service_slug: str, definition: str, inputs: Mapping[str, Any] | None = None
    ) -> WorkflowRecord:
        """Record a new workflow for ``tenant`` and start its first run.

        Raises:
            UnknownDefinition: no definition has that name.
            InvalidInput: the inputs do not match the definition, or the slug is invalid.
        """
        check_slug(service_slug)
        check_storable(tenant, "tenant")
        found = self.definitions.get(definition)
        checked = found.validate_inputs(inputs)
        now = self.clock.now()
        workflow_id = new_workflow_id(now)
        record = WorkflowRecord(
            id=workflow_id,
            tenant=tenant,
            service_slug=service_slug,
            definition=found.name,
            status=WorkflowStatus.PENDING,
            inputs=checked,
            run=0,
            dbos_workflow_id=dbos_workflow_id(workflow_id, 0),
            version=1,
            created_at=now,
            updated_at=now,
        )
        steps = [
            StepRecord(
                workflow_id=workflow_id,
                name=step.name,
                kind=step.kind,
                position=position,
                depends_on=step.depends_on,
                status=StepStatus.PENDING,
                version=1,
            )
            for position, step in enumerate(found.steps)
        ]
        await self.store.create_workflow(record, steps)
        await self._launch(record, steps)
        return record

    async def cancel(self, *, tenant: str, workflow_id: str) -> WorkflowRecord:
        """Cancel a workflow of ``tenant``: its waits stop, its tokens stop working, nothing else runs.

        Raises:
            WorkflowNotFound: no such workflow for this tenant.
            IllegalTransition: it has ended, or is compensating.
        """
        updated = await self.store.cancel_workflow(workflow_id, tenant=tenant, at=self.clock.now())
        await DBOS.cancel_workflow_async(updated.dbos_workflow_id)
        task = self._tasks.get(updated.dbos_workflow_id)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return updated

    async def retry(self, *, tenant: str, workflow_id: str) -> WorkflowRecord:
        """Run a failed, compensated or cancelled workflow again, from the steps that did not succeed.

        Raises:
            WorkflowNotFound: no such workflow for this tenant.
            IllegalTransition: it has not ended in a way that can be retried.
        """
        current = await self.store.get_workflow(workflow_id, tenant=tenant)
        if current is None:
            raise WorkflowNotFound(f"no workflow {workflow_id!r}")
        updated, steps = await self.store.retry_workflow(
            workflow_id,
            tenant=tenant,
            at=self.clock.now(),
            dbos_workflow_id=dbos_workflow_id(workflow_id, current.run + 1),
        )
        await self._launch(updated, steps)
        return updated

    async def callback(
        self,
        token: str,
        *,
        status: str,
        endpoint: str | None = None,
        credentials: Any = None,
        message: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> CallbackReceipt:
        """Accept an external service's callback for the step that handed out ``token``.

        The token is claimed atomically (single use), the credentials are sealed before anything is stored, and the
        callback reaches the waiting DBOS workflow once (``send`` with the token's hash as idempotency key).

        Raises:
            CallbackTokenUnknown: no step handed out this token.
            CallbackTokenUsed: it was used before, or its step stopped waiting.
            CallbackTokenExpired: it outlived its step's timeout.
            InvalidInput: ``status`` is not ``succeeded`` or ``failed``, or a value cannot be stored.
        """
        if status not in _CALLBACK_STATUSES:
            raise InvalidInput("status must be 'succeeded' or 'failed'", field="status")
        token_hash = hash_token(token)
        now = self.clock.now()
        found = await self.store.get_token(token_hash)
        state = classify(found, now)
        if state is TokenState.USED and found is not None and found.payload is not None and not found.delivered:
            await self._deliver(found)  # a claim whose delivery a crash interrupted
        raise_for(state)
        payload: dict[str, Any] = {
            "status": status,
            "endpoint": endpoint,
            "credentials": None if credentials is None else self.cipher.seal(credentials),
            "message": message,
            "metadata": dict(metadata or {}),
        }
        check_storable({key: value for key, value in payload.items() if key != "credentials"}, "")
        claimed = await self.store.claim_token(token_hash, at=now, payload=payload)
        if claimed is None:
            raise_for(classify(await self.store.get_token(token_hash), now))
            raise CallbackTokenUsed("this callback token was used already")  # claimed by another caller meanwhile
        await self._deliver(claimed)
        return CallbackReceipt(workflow_id=claimed.workflow_id, step=claimed.step, status=status)

    async def recover_executor(self, executor_id: str) -> list[str]:
        """Take over the pending workflows of a dead instance (its registration expired): their DBOS ids."""
        return await DBOSRuntime.recover([executor_id])

    # Reads

    async def get(self, *, tenant: str, workflow_id: str) -> WorkflowDetail:
        """The workflow with every step, credentials redacted; ``WorkflowNotFound`` for another tenant's."""
        workflow = await self.store.get_workflow(workflow_id, tenant=tenant)
        if workflow is None:
            raise WorkflowNotFound(f"no workflow {workflow_id!r}")
        steps = await self.store.get_steps(workflow_id)
        return WorkflowDetail(workflow=workflow, steps=[step.redacted() for step in steps])

    async def list_workflows(self, query: WorkflowQuery) -> WorkflowPage:
        """One page of the query's tenant's workflows, newest first."""
        return await self.store.find_workflows(query)

    async def status(self, *, tenant: str, service_slug: str) -> WorkflowRecord | None:
        """The tenant's most recent workflow for the service, or ``None``."""
        return await self.store.latest_for_service(tenant, service_slug)

    async def has_active_workflows(self, service_slug: str) -> bool:
        """Whether any tenant's workflow for the service is still at work (the registry's dependents check)."""
        return await self.store.count_active(service_slug) > 0

    async def reveal(self, *, tenant: str, workflow_id: str, step: str) -> dict[str, Any]:
        """A step's outputs with credentials decrypted: for the host's own code, never for a list or detail answer."""
        await self.get(tenant=tenant, workflow_id=workflow_id)
        for record in await self.store.get_steps(workflow_id):
            if record.name == step:
                return dict(self.cipher.open_all(record.outputs or {}))
        raise WorkflowNotFound(f"workflow {workflow_id!r} has no step {step!r}")

    # Internals

    async def _launch(self, workflow: WorkflowRecord, steps: list[StepRecord] | None = None) -> None:
        """Start the DBOS workflow of the workflow's current run (idempotent: the id is deterministic)."""
        if steps is None:
            steps = await self.store.get_steps(workflow.id)
        done = sorted(
            (step for step in steps if step.status is StepStatus.SUCCEEDED),
            key=lambda step: (step.completed_seq if step.completed_seq is not None else -1, step.position),
        )
        spec = RunSpec(
            workflow_id=workflow.id,
            tenant=workflow.tenant,
            service_slug=workflow.service_slug,
            definition=workflow.definition,
            inputs=workflow.inputs,
            run=workflow.run,
            base_version=workflow.version,
            done={step.name: step.outputs or {} for step in done},
            done_order=[step.name for step in done],
        )
        with SetWorkflowID(workflow.dbos_workflow_id):
            await DBOS.start_workflow_async(provision_workflow, msgspec.to_builtins(spec))

    async def _pending_without_runner(self) -> list[WorkflowRecord]:
        """Workflows recorded as pending whose DBOS workflow may never have been started (a crash in between)."""
        found = []
        for workflow in await self.store.pending_workflows():
            if await DBOS.get_workflow_status_async(workflow.dbos_workflow_id) is None:
                found.append(workflow)
        return found

    async def _deliver(self, token: CallbackTokenRecord) -> None:
        await DBOS.send_async(
            token.dbos_workflow_id,
            token.payload,
            topic=_topic(token.step),
            idempotency_key=f"callback:{token.token_hash}",
        )
        await self.store.mark_delivered(token.token_hash)

    def _track(self, dbos_id: str, task: asyncio.Task[Any] | None) -> None:
        if task is not None:
            self._tasks[dbos_id] = task

    def _untrack(self, dbos_id: str, task: asyncio.Task[Any] | None) -> None:
        if task is not None and self._tasks.get(dbos_id) is task:
            del self._tasks[dbos_id]


def _topic(step: str) -> str:
    return f"callback:{step}"


# The runner


class _Superseded(Exception):
    """The workflow was cancelled, or a retry started a newer run: this runner stops."""


@dataclass
class _Unit:
    """One unit of work the runner waits on: an attempt, a notification, a backoff or a callback wait."""

    order: int
    step: str
    kind: str  # "attempt" | "notify" | "backoff" | "wait"
    attempt: int


class _Runner:
    """Runs one run of one workflow inside the DBOS workflow (see the module docstring)."""

    def __init__(self, engine: ProvisioningEngine, spec: RunSpec) -> None:
        self.engine = engine
        self.spec = spec
        self.store = engine.store
        self.definition = engine.definitions.get(spec.definition)
        self.version = spec.base_version
        self.status = WorkflowStatus.PENDING
        self.outputs: dict[str, dict[str, Any]] = dict(spec.done)
        self.completed: list[str] = list(spec.done_order)
        self.started: set[str] = set(spec.done)
        self.attempts: dict[str, int] = {}
        self.units: dict[asyncio.Future[Any], _Unit] = {}
        self.order = 0
        self.failure: str | None = None

    async def run(self) -> dict[str, Any]:
        try:
            return await self._run()
        except _Superseded:
            return {"status": "superseded"}
        finally:
            # Cancelled (shutdown, a cancel), superseded or crashed: no unit outlives its runner.
            await self._drop_units(lambda unit: True)

    async def _run(self) -> dict[str, Any]:
        await self._workflow(WorkflowEvent.START)
        while True:
            await self._check_current()
            if self.failure is None:
                for name in self.definition.ready(self.completed, self.started):
                    await self._start_step(name)
            if not self.units:
                break
            await self._show_waiting()
            tasks: list[Awaitable[Any]] = [*sorted(self.units, key=lambda task: self.units[task].order)]
            finished, _ = await DBOS.asyncio_wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(finished, key=lambda task: self.units[task].order):
                await self._handle(self.units.pop(task), task)
            if self.failure is not None:
                await self._stop_waiting()
        if self.failure is None:
            await self._workflow(WorkflowEvent.SUCCEED)
            return {"status": WorkflowStatus.SUCCEEDED.value}
        return {"status": (await self._compensate()).value}

    # Units

    def _add(self, future: asyncio.Future[Any], step: str, kind: str, attempt: int) -> None:
        self.order += 1
        self.units[future] = _Unit(order=self.order, step=step, kind=kind, attempt=attempt)

    async def _start_step(self, name: str) -> None:
        self.started.add(name)
        await self._step(name, StepEvent.START)
        self._spawn_attempt(name, 1)

    def _spawn_attempt(self, name: str, attempt: int) -> None:
        step = self.definition.step(name)
        self.attempts[name] = attempt
        callback = isinstance(step.action, Callback)
        kind = "notify" if callback else "attempt"
        timeout = min(step.timeout_seconds, _NOTIFY_TIMEOUT) + 5.0 if callback else step.timeout_seconds
        payload = self._attempt_payload(name, attempt)
        reservation = DBOS.reserve_step()  # the step id is drawn now, in a deterministic place
        future = asyncio.ensure_future(
            reservation.run_async(
                {"name": f"{name}:{kind}#{self.spec.run}.{attempt}", "timeout_seconds": timeout},
                _execute_attempt,
                payload,
            )
        )
        self._add(future, name, kind, attempt)

    async def _spawn_started(self, coroutine: Any, step: str, kind: str, attempt: int) -> None:
        """Start a task whose DBOS operation draws its id when it first runs, and let it run now.

        ``recv_async`` and ``sleep_async`` take their step id at their first instruction; yielding once right after
        creating the task makes that happen here, before the runner does anything else, on every replay alike.
        """
        future = asyncio.ensure_future(coroutine)
        self._add(future, step, kind, attempt)
        await asyncio.sleep(0)

    def _attempt_payload(self, name: str, attempt: int) -> dict[str, Any]:
        step = self.definition.step(name)
        return {
            "workflow_id": self.spec.workflow_id,
            "tenant": self.spec.tenant,
            "service_slug": self.spec.service_slug,
            "definition": self.spec.definition,
            "step": name,
            "run": self.spec.run,
            "attempt": attempt,
            "inputs": self.spec.inputs,
            "dependencies": {dep: self.outputs.get(dep, {}) for dep in step.depends_on},
            "dbos_workflow_id": dbos_workflow_id(self.spec.workflow_id, self.spec.run),
        }

    async def _handle(self, unit: _Unit, future: asyncio.Future[Any]) -> None:
        step = self.definition.step(unit.step)
        if unit.kind == "backoff":
            future.result()
            self._spawn_attempt(unit.step, unit.attempt)
            return
        if unit.kind == "wait":
            await self._handle_callback(step, future.result())
            return
        try:
            result: dict[str, Any] = future.result()
        except Exception as exc:  # a DBOS step timeout, recorded as an error (BaseExceptions of DBOS propagate)
            result = {"ok": False, "error": _describe(exc), "permanent": False}
        if result.get("ok"):
            if unit.kind == "notify" and self.failure is not None:
                # Another step failed while this one was handing out its token: it will not wait.
                await self._step(unit.step, StepEvent.CANCEL, error="stopped: another step failed")
                await self.store.revoke_tokens(self.spec.workflow_id, step=unit.step, at=self.engine.clock.now())
            elif unit.kind == "notify":
                expires = (result.get("outputs") or {}).get("token_expires_at")
                await self._step(
                    unit.step, StepEvent.WAIT, expires_at=datetime.fromisoformat(expires) if expires else None
                )
                await self._spawn_started(
                    DBOS.recv_async(_topic(unit.step), timeout_seconds=step.timeout_seconds), unit.step, "wait", 0
                )
            else:
                await self._succeed(unit.step, dict(result.get("outputs") or {}))
            return
        error = str(result.get("error") or "step failed")
        if result.get("permanent") or unit.attempt >= step.retry.attempts or self.failure is not None:
            await self._fail(unit.step, error)
            return
        delay = step.retry.delay(unit.attempt)
        if delay > 0:
            await self._spawn_started(DBOS.sleep_async(delay), unit.step, "backoff", unit.attempt + 1)
        else:
            self._spawn_attempt(unit.step, unit.attempt + 1)

    async def _handle_callback(self, step: Step, message: Any) -> None:
        await self.store.revoke_tokens(self.spec.workflow_id, step=step.name, at=self.engine.clock.now())
        if message is None:
            await self._fail(step.name, f"no callback within {step.timeout_seconds:g} seconds")
            return
        body = message if isinstance(message, dict) else {}
        if body.get("status") != "succeeded":
            await self._fail(step.name, _short(str(body.get("message") or "the external service reported a failure")))
            return
        outputs: dict[str, Any] = {"endpoint": body.get("endpoint"), "credentials": body.get("credentials")}
        if body.get("message") is not None:
            outputs["message"] = body["message"]
        if body.get("metadata"):
            outputs["metadata"] = body["metadata"]
        await self._succeed(step.name, outputs)

    async def _succeed(self, name: str, outputs: dict[str, Any]) -> None:
        self.outputs[name] = outputs
        self.completed.append(name)
        await self._step(name, StepEvent.SUCCEED, outputs=outputs, completed_seq=len(self.completed))

    async def _fail(self, name: str, error: str) -> None:
        await self._step(name, StepEvent.FAIL, error=error)
        if self.failure is None:
            self.failure = f"step '{name}' failed: {error}"

    async def _stop_waiting(self) -> None:
        """After a failure: backoffs and callback waits stop (their steps are cancelled); attempts run to the end."""
        dropped = await self._drop_units(lambda unit: unit.kind in ("backoff", "wait"))
        for name in sorted(dropped):
            await self._step(name, StepEvent.CANCEL, error="stopped: another step failed")
            await self.store.revoke_tokens(self.spec.workflow_id, step=name, at=self.engine.clock.now())

    async def _drop_units(self, which: Any) -> set[str]:
        doomed = [task for task, unit in self.units.items() if which(unit)]
        names = {self.units[task].step for task in doomed}
        for task in doomed:
            del self.units[task]
            task.cancel()
        if doomed:
            await asyncio.gather(*doomed, return_exceptions=True)
        return names

    async def _show_waiting(self) -> None:
        """Running, or waiting when every unit in flight is a wait for a callback."""
        waiting = all(unit.kind == "wait" for unit in self.units.values())
        if waiting and self.status is WorkflowStatus.RUNNING:
            await self._workflow(WorkflowEvent.WAIT)
        elif not waiting and self.status is WorkflowStatus.WAITING:
            await self._workflow(WorkflowEvent.RESUME)

    async def _compensate(self) -> WorkflowStatus:
        for name in self.definition.step_names:
            if name not in self.started:
                await self._step(name, StepEvent.SKIP)
        undo = [name for name in reversed(self.completed) if self.definition.step(name).compensation is not None]
        if not undo:
            await self._workflow(WorkflowEvent.FAIL, error=self.failure)
            return WorkflowStatus.FAILED
        await self._workflow(WorkflowEvent.COMPENSATE, error=self.failure)
        failed = False
        for name in undo:
            await self._step(name, StepEvent.COMPENSATE)
            error = await self._run_compensation(name)
            if error is None:
                await self._step(name, StepEvent.COMPENSATED)
            else:
                failed = True
                await self._step(name, StepEvent.COMPENSATION_FAILED, error=f"compensation failed: {error}")
        if failed:
            await self._workflow(WorkflowEvent.FAIL, error=f"{self.failure}; a compensation failed")
            return WorkflowStatus.FAILED
        await self._workflow(WorkflowEvent.COMPENSATED)
        return WorkflowStatus.COMPENSATED

    async def _run_compensation(self, name: str) -> str | None:
        """Run the step's compensation with its retry policy, sequentially (one DBOS step per attempt)."""
        step = self.definition.step(name)
        error = "compensation failed"
        for attempt in range(1, step.retry.attempts + 1):
            payload = {
                **self._attempt_payload(name, attempt),
                "compensate": True,
                "outputs": self.outputs.get(name, {}),
            }
            try:
                result: dict[str, Any] = await DBOS.run_step_async(
                    {"name": f"{name}:compensate#{self.spec.run}.{attempt}", "timeout_seconds": step.timeout_seconds},
                    _execute_attempt,
                    payload,
                )
            except Exception as exc:
                result = {"ok": False, "error": _describe(exc), "permanent": False}
            if result.get("ok"):
                return None
            error = str(result.get("error") or error)
            if result.get("permanent") or attempt == step.retry.attempts:
                break
            delay = step.retry.delay(attempt)
            if delay > 0:
                await DBOS.sleep_async(delay)
        return error

    # Read-model writes: versioned, so a replay after a crash writes nothing twice

    async def _check_current(self) -> None:
        current = await self.store.get_workflow(self.spec.workflow_id)
        if current is None or current.run != self.spec.run or current.status is WorkflowStatus.CANCELLED:
            raise _Superseded

    async def _workflow(self, event: WorkflowEvent, *, error: str | None = None) -> None:
        self.version += 1
        change = WorkflowChange(
            event=event, run=self.spec.run, version=self.version, at=self.engine.clock.now(), error=error
        )
        try:
            await self.store.apply_workflow(self.spec.workflow_id, change)
        except (IllegalTransition, StaleWrite, WorkflowNotFound):
            raise _Superseded from None
        self.status = {
            WorkflowEvent.START: WorkflowStatus.RUNNING,
            WorkflowEvent.WAIT: WorkflowStatus.WAITING,
            WorkflowEvent.RESUME: WorkflowStatus.RUNNING,
        }.get(event, self.status)

    async def _step(
        self,
        name: str,
        event: StepEvent,
        *,
        error: str | None = None,
        outputs: dict[str, Any] | None = None,
        completed_seq: int | None = None,
        expires_at: datetime | None = None,
    ) -> Applied:
        self.version += 1
        change = StepChange(
            event=event,
            run=self.spec.run,
            version=self.version,
            at=self.engine.clock.now(),
            error=error,
            outputs=outputs,
            completed_seq=completed_seq,
            expires_at=expires_at,
        )
        try:
            return await self.store.apply_step(self.spec.workflow_id, name, change)
        except (IllegalTransition, StaleWrite, WorkflowNotFound):
            raise _Superseded from None


@DBOS.workflow(name=WORKFLOW_NAME)
async def provision_workflow(spec: dict[str, Any]) -> dict[str, Any]:
    """The generic DBOS workflow: one run of one provisioning workflow (``spec`` is a :class:`RunSpec` as JSON)."""
    engine = _engine()
    run = msgspec.convert(spec, RunSpec)
    dbos_id = dbos_workflow_id(run.workflow_id, run.run)
    task = asyncio.current_task()
    engine._track(dbos_id, task)
    try:
        return await _Runner(engine, run).run()
    finally:
        engine._untrack(dbos_id, task)


# Step bodies (each call is one DBOS step: at least once, checkpointed when it returns)


async def _execute_attempt(payload: dict[str, Any]) -> dict[str, Any]:
    """One attempt of a step (or of its compensation); records the execution; never raises for a step's failure."""
    engine = _engine()
    definition = engine.definitions.get(payload["definition"])
    step = definition.step(payload["step"])
    compensating = bool(payload.get("compensate"))
    execution_step = f"{step.name}:compensate" if compensating else step.name
    execution_id = await engine.store.start_execution(
        StepExecution(
            workflow_id=payload["workflow_id"],
            step=execution_step,
            run=payload["run"],
            attempt=payload["attempt"],
            executor_id=engine.executor_id,
            started_at=engine.clock.now(),
        )
    )
    try:
        if compensating:
            await _compensation(engine, step, payload)
            outputs: dict[str, Any] = {}
        elif isinstance(step.action, Call):
            outputs = await _call(engine, step.action, _context(engine, payload))
        elif isinstance(step.action, HttpCall):
            outputs = await _http(engine, step, step.action, _context(engine, payload))
        else:
            outputs = await _notify(engine, step, step.action, payload)
    except asyncio.CancelledError:
        # DBOS cancels an attempt that outlives its timeout (or the runner is shut down).
        with contextlib.suppress(Exception):
            await engine.store.finish_execution(execution_id, at=engine.clock.now(), outcome="cancelled", error=None)
        raise
    except Exception as exc:
        permanent = isinstance(exc, PermanentStepError | OutboundURLRefused | InvalidInput)
        error = _describe(exc)
        await engine.store.finish_execution(execution_id, at=engine.clock.now(), outcome="failed", error=error)
        return {"ok": False, "error": error, "permanent": permanent}
    await engine.store.finish_execution(execution_id, at=engine.clock.now(), outcome="succeeded", error=None)
    return {"ok": True, "outputs": outputs}


def _context(engine: ProvisioningEngine, payload: dict[str, Any]) -> StepContext:
    return StepContext(
        tenant=payload["tenant"],
        service_slug=payload["service_slug"],
        workflow_id=payload["workflow_id"],
        step=payload["step"],
        attempt=payload["attempt"],
        inputs=payload["inputs"],
        dependencies={name: engine.cipher.open_all(outputs) for name, outputs in payload["dependencies"].items()},
    )


async def _call(engine: ProvisioningEngine, action: Call, context: StepContext) -> dict[str, Any]:
    result = await action.fn(context)
    outputs = dict(result or {})
    if outputs.get("credentials") is not None:
        outputs["credentials"] = engine.cipher.seal(outputs["credentials"])
    check_storable(outputs, "outputs")
    # Plain JSON from here on: what DBOS records and what the read model keeps are the same values.
    plain: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(outputs))
    return plain


async def _compensation(engine: ProvisioningEngine, step: Step, payload: dict[str, Any]) -> None:
    assert step.compensation is not None
    base = _context(engine, payload)
    context = CompensationContext(
        tenant=base.tenant,
        service_slug=base.service_slug,
        workflow_id=base.workflow_id,
        step=base.step,
        attempt=base.attempt,
        inputs=base.inputs,
        dependencies=base.dependencies,
        outputs=engine.cipher.open_all(payload.get("outputs") or {}),
    )
    await step.compensation(context)


def _classify_response(response: httpx.Response) -> None:
    """Return for a 2xx; raise ``PermanentStepError`` for answers a retry cannot change, ``RuntimeError`` otherwise."""
    code = response.status_code
    if 200 <= code < 300:
        return
    if 300 <= code < 400:
        raise PermanentStepError(f"HTTP {code}: redirects are not followed")
    if code in (408, 425, 429) or code >= 500:
        raise RuntimeError(f"HTTP {code}")
    raise PermanentStepError(f"HTTP {code}")


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:_MAX_BODY_TEXT]


async def _http(engine: ProvisioningEngine, step: Step, action: HttpCall, context: StepContext) -> dict[str, Any]:
    url = action.url(context) if callable(action.url) else action.url
    body = (
        action.body(context)
        if action.body is not None
        else {
            "workflow_id": context.workflow_id,
            "step": context.step,
            "service_slug": context.service_slug,
            "inputs": dict(context.inputs),
        }
    )
    response = await engine.http.request(
        action.method,
        url,
        json=body,
        headers={**action.headers, "Idempotency-Key": context.idempotency_key},
        timeout_seconds=step.timeout_seconds,
    )
    _classify_response(response)
    outputs = {"status_code": response.status_code, "body": _body(response)}
    check_storable(outputs, "outputs")
    return outputs


async def _notify(engine: ProvisioningEngine, step: Step, action: Callback, payload: dict[str, Any]) -> dict[str, Any]:
    """Hand out a new token (only its hash is stored) and send it to the service's provisioning endpoint."""
    slug, inputs = payload["service_slug"], payload["inputs"]
    url = await engine.services.endpoint_url(slug, action.endpoint_name) if engine.services is not None else None
    url = url or inputs.get("provisioning_url")
    if not isinstance(url, str) or not url:
        raise PermanentStepError(
            f"service '{slug}' has no '{action.endpoint_name}' endpoint and the inputs give no provisioning_url"
        )
    token, token_hash = issue_token()
    now = engine.clock.now()
    expires_at = now + timedelta(seconds=step.timeout_seconds)
    await engine.store.put_token(
        CallbackTokenRecord(
            token_hash=token_hash,
            tenant=payload["tenant"],
            workflow_id=payload["workflow_id"],
            step=step.name,
            run=payload["run"],
            dbos_workflow_id=payload["dbos_workflow_id"],
            issued_at=now,
            expires_at=expires_at,
        )
    )
    response = await engine.http.request(
        "POST",
        url,
        json={
            "callback_token": token,
            "callback_url": engine.callback_url,
            "workflow_id": payload["workflow_id"],
            "step": step.name,
            "service_slug": slug,
            "inputs": inputs,
        },
        headers={"Idempotency-Key": f"{payload['workflow_id']}:{step.name}"},
        timeout_seconds=min(step.timeout_seconds, _NOTIFY_TIMEOUT),
    )
    _classify_response(response)
    return {"token_expires_at": expires_at.isoformat()}
