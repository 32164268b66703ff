"""Durability with real processes: SIGKILL an app while a step waits for its callback (or while a step runs); the
restarted app accepts the callback and completes the workflow, and completed steps do not run again. On PostgreSQL,
a surviving instance takes over a dead instance's workflows, and a callback may arrive at any instance."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from litestar_registry.provisioning.states import StepStatus
from litestar_registry.provisioning.store.sqlalchemy import SQLAlchemyProvisioningStore
from tests.backends import POSTGRES_URL
from tests.provisioning.conftest import KEY, dbos_database, eventually, postgres_schema, sqlite_url
from tests.provisioning.receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]


class App:
    """One run of ``durable_app`` in a process of its own."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def next_event(self, within: float = 60.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), within)
        if not line:
            stderr = await self.process.stderr.read() if self.process.stderr else b""
            raise AssertionError(f"the app exited ({self.process.returncode}): {stderr.decode()[-3000:]}")
        event: dict[str, Any] = json.loads(line)
        return event

    async def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def kill(self) -> None:
        with suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        assert await self.process.wait() == -signal.SIGKILL


@asynccontextmanager
async def app(mode: str, config: dict[str, Any]) -> AsyncIterator[App]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.provisioning.durable_app",
        mode,
        json.dumps(config),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # Warnings are errors there too, but for the one pyproject.toml also ignores (advanced-alchemy's).
        env={**os.environ, "PYTHONWARNINGS": "error,ignore:The declarative_mixin decorator"},
    )
    running = App(process)
    try:
        yield running
    finally:
        if process.returncode is None:
            await running.kill()


async def until_waiting(config: dict[str, Any], workflow_id: str) -> None:
    """Read the shared read model from here until the callback step waits (its token is out) and ``side`` is done."""
    async with SQLAlchemyProvisioningStore(config["store_url"], engine_options=config["store_options"]) as store:

        async def waiting() -> bool:
            steps = {step.name: step.status for step in await store.get_steps(workflow_id)}
            return steps.get("external") is StepStatus.WAITING and steps.get("side") is StepStatus.SUCCEEDED

        await eventually(waiting, within=60)


def counts(executions: list[list[Any]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for step, *_ in executions:
        found[step] = found.get(step, 0) + 1
    return found


async def test_sigkill_while_a_step_waits_for_its_callback(tmp_path: Path) -> None:
    async with Receiver() as receiver:
        config = sqlite_config(tmp_path, receiver)
        # In the first process, `side` finishes well after the callback step started waiting; after the restart
        # both replay at once. The recorded order decides, so the replay takes the same path.
        async with app("start", {**config, "side_seconds": 1.0}) as first:
            started = await first.next_event()
            [notice] = await receiver.wait_for(1, within=60)
            await until_waiting(config, started["workflow_id"])
            await first.kill()
        async with app("serve", config) as second:
            assert (await second.next_event())["event"] == "ready"
            await second.send(f"callback {notice.body['callback_token']}")
            assert (await second.next_event())["event"] == "callback"
            await second.send(f"wait {started['workflow_id']}")
            finished = await second.next_event()
        assert finished["status"] == "succeeded"
        assert finished["steps"] == {
            "prepare": ["succeeded", 1],
            "external": ["succeeded", 1],
            "side": ["succeeded", 1],
            "finish": ["succeeded", 1],
        }
        assert counts(finished["executions"]) == {"prepare": 1, "external": 1, "side": 1, "finish": 1}  # none twice
        assert len(receiver.requests) == 1  # the external service was notified once


async def test_sigkill_in_the_middle_of_a_step_runs_that_step_again_and_records_both(tmp_path: Path) -> None:
    async with Receiver() as receiver:
        marker = tmp_path / "prepare-started"
        config = {**sqlite_config(tmp_path, receiver), "prepare_marker": str(marker)}
        async with app("start", config) as first:
            started = await first.next_event()

            async def marked() -> bool:
                return marker.exists()

            await eventually(marked, within=60)
            await first.kill()
        # The restarted app recovers the workflow at launch and runs the interrupted step again; then the external
        # service is notified by the new process.
        async with app("serve", {**config, "prepare_marker": None}) as second:
            assert (await second.next_event())["event"] == "ready"
            [notice] = await receiver.wait_for(1, within=60)
            await second.send(f"callback {notice.body['callback_token']}")
            assert (await second.next_event())["event"] == "callback"
            await second.send(f"wait {started['workflow_id']}")
            finished = await second.next_event()
        assert finished["status"] == "succeeded"
        prepare = [run for run in finished["executions"] if run[0] == "prepare"]
        assert [(attempt, outcome) for _, _, attempt, outcome in prepare] == [(1, None), (1, "succeeded")]
        assert finished["steps"]["prepare"] == ["succeeded", 2]  # both executions counted
        assert counts(finished["executions"])["external"] == 1


def sqlite_config(tmp_path: Path, receiver: Receiver) -> dict[str, Any]:
    return {
        "store_url": sqlite_url(tmp_path),
        "store_options": {},
        "dbos_url": f"sqlite:///{tmp_path / 'dbos.sqlite'}",
        "executor_id": "local",
        "key": KEY,
        "receiver_url": receiver.url,
    }


@pytest.mark.postgres
async def test_a_survivor_recovers_a_dead_instances_workflow_on_postgres() -> None:
    async with Receiver() as receiver, postgres_schema() as options, dbos_database() as dbos_url:
        config: dict[str, Any] = {
            "store_url": POSTGRES_URL,
            "store_options": options,
            "dbos_url": dbos_url,
            "executor_id": "instance-a",
            "key": KEY,
            "receiver_url": receiver.url,
        }
        async with app("serve", {**config, "executor_id": "instance-b"}) as b:
            assert (await b.next_event())["event"] == "ready"
            async with app("start", config) as a:
                started = await a.next_event()
                [notice] = await receiver.wait_for(1, within=60)
                await until_waiting(config, started["workflow_id"])
                await a.kill()
            # What the registry will do when instance-a's registration expires: the survivor takes over.
            await b.send("recover instance-a")
            assert await b.next_event() == {"event": "recovered", "workflows": [f"{started['workflow_id']}:0"]}
            await b.send(f"callback {notice.body['callback_token']}")
            assert (await b.next_event())["event"] == "callback"
            await b.send(f"wait {started['workflow_id']}")
            finished = await b.next_event()
        assert finished["status"] == "succeeded"
        # `external` and `side` start together, in either order; `finish` runs on the survivor.
        assert sorted((step, executor) for step, executor, *_ in finished["executions"]) == [
            ("external", "instance-a"),
            ("finish", "instance-b"),
            ("prepare", "instance-a"),
            ("side", "instance-a"),
        ]


@pytest.mark.postgres
async def test_two_instances_share_one_postgres_and_a_callback_reaches_either() -> None:
    async with Receiver() as receiver, postgres_schema() as options, dbos_database() as dbos_url:
        config: dict[str, Any] = {
            "store_url": POSTGRES_URL,
            "store_options": options,
            "dbos_url": dbos_url,
            "executor_id": "instance-a",
            "key": KEY,
            "receiver_url": receiver.url,
        }
        async with app("start", config) as a, app("serve", {**config, "executor_id": "instance-b"}) as b:
            started = await a.next_event()
            assert (await b.next_event())["event"] == "ready"
            [notice] = await receiver.wait_for(1, within=60)
            await b.send(f"callback {notice.body['callback_token']}")  # lands on b; a runs the workflow on
            assert (await b.next_event())["event"] == "callback"
            await b.send(f"wait {started['workflow_id']}")
            finished = await b.next_event()
        assert finished["status"] == "succeeded"
        assert sorted((step, executor) for step, executor, *_ in finished["executions"]) == [
            ("external", "instance-a"),
            ("finish", "instance-a"),
            ("prepare", "instance-a"),
            ("side", "instance-a"),
        ]
