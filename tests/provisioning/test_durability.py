"""Durability of the engine with real processes: SIGKILL an app in the middle of a step; the restarted app runs that
step again (both executions recorded), then completes the workflow, each of its change-log topics appended once.

The same over HTTP, through the plugin (SIGKILL while a step waits for its callback, two instances on one
PostgreSQL, a survivor recovering a killed instance's workflows), is in ``test_http_durability.py``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing, suppress
from pathlib import Path
from typing import Any

from tests.provisioning.conftest import KEY, eventually, sqlite_url
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


def counts(executions: list[list[Any]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for step, *_ in executions:
        found[step] = found.get(step, 0) + 1
    return found


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
        # The change log, in the same file: each topic once, though the restarted app replayed the writes before it.
        with closing(sqlite3.connect(tmp_path / "registry.db")) as db:
            logged = db.execute(
                "select id, topic from registry_events where subject = ? order by id", [started["workflow_id"]]
            )
            assert [topic for _, topic in logged.fetchall()] == [
                "workflow.started",
                "workflow.step_waiting",
                "workflow.succeeded",
            ]


def sqlite_config(tmp_path: Path, receiver: Receiver) -> dict[str, Any]:
    return {
        "store_url": sqlite_url(tmp_path),
        "store_options": {},
        "dbos_url": f"sqlite:///{tmp_path / 'dbos.sqlite'}",
        "executor_id": "local",
        "key": KEY,
        "receiver_url": receiver.url,
    }
