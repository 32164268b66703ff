"""A host app with provisioning, served by uvicorn in a process of its own, for the durability tests over HTTP.

``python -m tests.provisioning.http_app PORT``: every setting comes from ``REGISTRY_*`` variables, as in a
deployment. Its one definition, ``durable``, appends a line ``<workflow id> <step> <pid>`` to the file named by
``DURABLE_EXECUTIONS`` each time one of its steps runs, so a test counts the executions of every step across
processes, restarts and kills, apart from the registry's own bookkeeping.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import uvicorn
from litestar import Litestar, get

from litestar_registry import RegistryConfig, RegistryPlugin
from litestar_registry.provisioning import Call, Callback, RetryPolicy, Step, StepContext, WorkflowDefinition


def _record(ctx: StepContext) -> None:
    line = f"{ctx.workflow_id} {ctx.step} {os.getpid()}\n"
    with Path(os.environ["DURABLE_EXECUTIONS"]).open("a", encoding="utf-8") as log:  # one short append: atomic
        log.write(line)


async def prepare(ctx: StepContext) -> dict[str, Any]:
    await asyncio.to_thread(_record, ctx)
    return {"prepared": True}


async def side(ctx: StepContext) -> dict[str, Any]:
    # DURABLE_SIDE_SECONDS makes it finish after the callback step started waiting: a restarted process, without
    # it, replays the two in another timing than they ran, and must take the recorded path all the same.
    await asyncio.sleep(float(os.environ.get("DURABLE_SIDE_SECONDS", "0")))
    await asyncio.to_thread(_record, ctx)
    return {"side": True}


async def finish(ctx: StepContext) -> dict[str, Any]:
    await asyncio.to_thread(_record, ctx)
    return {"endpoint": ctx.dependencies["external"]["endpoint"], "pid": os.getpid()}


DURABLE = WorkflowDefinition(
    "durable",
    [
        Step("prepare", Call(prepare), retry=RetryPolicy(attempts=1)),
        Step("external", Callback(), depends_on=("prepare",), timeout_seconds=600),
        Step("side", Call(side), depends_on=("prepare",), retry=RetryPolicy(attempts=1)),
        Step("finish", Call(finish), depends_on=("external", "side"), retry=RetryPolicy(attempts=1)),
    ],
)


@get("/healthz", sync_to_thread=False)
def healthz() -> dict[str, int]:
    """Up, and which process answers."""
    return {"pid": os.getpid()}


def create_app() -> Litestar:
    """The app, configured from the environment."""
    config = RegistryConfig.from_env(provisioning_definitions=[DURABLE])
    return Litestar(route_handlers=[healthz], plugins=[RegistryPlugin(config)])


if __name__ == "__main__":
    uvicorn.run(create_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
