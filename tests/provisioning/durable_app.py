"""A provisioning app in a process of its own, for the durability tests.

Run as ``python -m tests.provisioning.durable_app MODE CONFIG_JSON``. Mode ``start`` starts a workflow, ``serve``
only launches (DBOS recovers this executor's pending workflows). Then it reads commands from stdin (``recover``,
``callback``, ``wait``) and prints one JSON line per event, until it is killed or stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from litestar_registry.provisioning import Call, Callback, OutboundURLPolicy, Step, StepContext, WorkflowDefinition
from litestar_registry.provisioning.crypto import CredentialCipher
from litestar_registry.provisioning.engine import ProvisioningEngine
from litestar_registry.provisioning.runtime import DBOSRuntime, DBOSSettings
from litestar_registry.provisioning.states import TERMINAL_WORKFLOW
from litestar_registry.provisioning.store.sqlalchemy import SQLAlchemyProvisioningStore


def say(**event: Any) -> None:
    print(json.dumps(event), flush=True)


def definition(config: dict[str, Any]) -> WorkflowDefinition:
    async def prepare(ctx: StepContext) -> dict[str, Any]:
        marker = config.get("prepare_marker")
        if marker:  # the first process dies here, in the middle of the step
            await asyncio.to_thread(Path(marker).write_text, str(os.getpid()))
            await asyncio.sleep(3600)
        return {"prepared": True}

    async def side(ctx: StepContext) -> dict[str, Any]:
        # Runs beside the callback step; slow in the first process only, so a replay sees other timings.
        await asyncio.sleep(float(config.get("side_seconds", 0)))
        return {"side": True}

    async def finish(ctx: StepContext) -> dict[str, Any]:
        return {"endpoint": ctx.dependencies["external"]["endpoint"], "side": ctx.dependencies["side"]["side"]}

    return WorkflowDefinition(
        "provision",
        [
            Step("prepare", Call(prepare)),
            Step("external", Callback(), depends_on=("prepare",), timeout_seconds=300),
            Step("side", Call(side), depends_on=("prepare",)),
            Step("finish", Call(finish), depends_on=("external", "side")),
        ],
    )


async def run(engine: ProvisioningEngine, store: SQLAlchemyProvisioningStore, verb: str, argument: str) -> None:
    """One command from the test: ``recover EXECUTOR``, ``callback TOKEN`` or ``wait WORKFLOW_ID``."""
    if verb == "recover":
        say(event="recovered", workflows=await engine.recover_executor(argument))
    elif verb == "callback":
        receipt = await engine.callback(
            argument, status="succeeded", endpoint="https://db.example", credentials={"pw": "x"}
        )
        say(event="callback", workflow_id=receipt.workflow_id)
    elif verb == "wait":
        for _ in range(600):
            detail = await engine.get(tenant="acme", workflow_id=argument)
            if detail.workflow.status in TERMINAL_WORKFLOW:
                break
            await asyncio.sleep(0.1)
        say(
            event="finished",
            status=detail.workflow.status.value,
            steps={step.name: [step.status.value, step.attempts] for step in detail.steps},
            executions=[
                [run.step, run.executor_id, run.attempt, run.outcome] for run in await store.list_executions(argument)
            ],
        )


async def main(mode: str, config: dict[str, Any]) -> None:
    store = SQLAlchemyProvisioningStore(config["store_url"], create_schema=True, engine_options=config["store_options"])
    async with store:
        engine = ProvisioningEngine(
            definitions=[definition(config)],
            store=store,
            cipher=CredentialCipher([config["key"]]),
            callback_url="https://registry.example/api/v1/provisioning/callback",
            url_policy=OutboundURLPolicy(allow_loopback=True),
        )
        settings = DBOSSettings(system_database_url=config["dbos_url"], executor_id=config["executor_id"])
        await engine.open(DBOSRuntime(settings))
        try:
            if mode == "start":
                started = await engine.start(
                    tenant="acme",
                    service_slug="billing",
                    definition="provision",
                    inputs={"provisioning_url": config["receiver_url"]},
                )
                say(event="started", workflow_id=started.id, pid=os.getpid())
            else:
                say(event="ready", pid=os.getpid())
            while command := (await asyncio.to_thread(sys.stdin.readline)).split():
                await run(engine, store, *command)
        finally:
            await engine.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
