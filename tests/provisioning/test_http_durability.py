"""Durability over HTTP, with the plugin in real app processes (uvicorn) configured from REGISTRY_* variables.

- SQLite: SIGKILL the app while a step waits for its callback; the restarted app accepts the callback, the workflow
  completes, and no completed step runs again.
- PostgreSQL, two instances on one database (the registry's, which DBOS shares by default): every step of every
  workflow runs exactly once, wherever it started and wherever its callback lands.
- PostgreSQL: SIGKILL one of two instances; its registration in the registry expires, and the survivor recovers
  its workflows and completes them.

Each step of ``tests.provisioning.http_app``'s definition appends to a file every time it runs: the counts come from
the steps themselves, not from the registry's bookkeeping.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import make_url, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.backends import POSTGRES_URL, require_server
from tests.provisioning.conftest import KEY, eventually
from tests.provisioning.receiver import Receiver

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
TENANT = {"Authorization": "Bearer tenant-acme-0123456789abcdef"}
SERVICE = {"Authorization": "Bearer service-team-0123456789abcdef"}
PREFIX = "/api/v1/provisioning"
STEPS = ("prepare", "external", "side", "finish")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Instance:
    """One app process: its URL, a client for it, and the process itself."""

    def __init__(self, process: asyncio.subprocess.Process, base_url: str, log: Path) -> None:
        self.process = process
        self.base_url = base_url
        self.log = log
        self.client = httpx.AsyncClient(base_url=base_url, timeout=10)

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a machine dies."""
        with suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        assert await self.process.wait() == -signal.SIGKILL

    async def stop(self) -> None:
        await self.client.aclose()
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:  # pragma: no cover - a hung app is killed, not waited on forever
                await self.kill()


@asynccontextmanager
async def instances(
    tmp_path: Path, settings: dict[str, str], module: str = "tests.provisioning.http_app"
) -> AsyncIterator[Callable[..., Any]]:
    """Start app processes (``python -m module PORT``) with ``settings`` (plus per-instance ones); every one is
    stopped at the end."""
    started: list[Instance] = []

    async def start(**extra: str) -> Instance:
        port = _free_port()
        env = {name: value for name, value in os.environ.items() if not name.startswith("REGISTRY_")}
        # Warnings are errors there too, but for the one pyproject.toml also ignores (advanced-alchemy's).
        env.update(settings, **extra, PYTHONWARNINGS="error,ignore:The declarative_mixin decorator")
        log = tmp_path / f"app-{port}.log"
        with log.open("wb") as out:
            command = [sys.executable, "-m", module, str(port)]
            process = await asyncio.create_subprocess_exec(*command, cwd=ROOT, env=env, stdout=out, stderr=out)
        instance = Instance(process, f"http://127.0.0.1:{port}", log)
        started.append(instance)

        async def up() -> bool:
            assert process.returncode is None, log.read_text()
            with suppress(httpx.TransportError):
                return (await instance.client.get("/healthz")).status_code == 200
            return False

        await eventually(up, within=60, interval=0.1)
        return instance

    try:
        yield start
    finally:
        await asyncio.gather(*(instance.stop() for instance in started))


def app_settings(store_url: str, executions: Path, **extra: str) -> dict[str, str]:
    return {
        "REGISTRY_STORE_URL": store_url,
        "REGISTRY_SERVICE_KEYS": "team=service-team-0123456789abcdef",
        "REGISTRY_TENANT_KEYS": "acme=tenant-acme-0123456789abcdef",
        "REGISTRY_AUTO_APPROVE_ALL": "true",
        "REGISTRY_TTL_PATH": "",
        "REGISTRY_PROVISIONING": "true",
        "REGISTRY_PROVISIONING_KEYS": KEY,
        "REGISTRY_PROVISIONING_CALLBACK_BASE_URL": "https://registry.example",
        "REGISTRY_PROVISIONING_ALLOW_LOOPBACK": "true",
        "DURABLE_EXECUTIONS": str(executions),
        **extra,
    }


async def register(app: Instance, receiver: Receiver, slug: str = "billing") -> None:
    body = {
        "slug": slug,
        "name": slug.title(),
        "version": "1.0.0",
        "ttl_seconds": 600,
        "endpoints": [{"name": "provisioning", "url": receiver.url}],
    }
    response = await app.client.post("/api/v1/registry/register", json=body, headers=SERVICE)
    assert response.status_code == 201, response.text


async def start_workflow(app: Instance, slug: str = "billing") -> str:
    body = {"service_slug": slug, "definition": "durable"}
    response = await app.client.post(f"{PREFIX}/workflows", json=body, headers=TENANT)
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


async def detail_when(app: Instance, workflow_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        response = await app.client.get(f"{PREFIX}/workflows/{workflow_id}", headers=TENANT)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()["data"]
        return found if done(found) else None

    result: dict[str, Any] = await eventually(check, within=60, interval=0.1)
    return result


def waiting(detail: dict[str, Any]) -> bool:
    steps = {step["name"]: step["status"] for step in detail["steps"]}
    return steps["external"] == "waiting" and steps["side"] == "succeeded"


def succeeded(detail: dict[str, Any]) -> bool:
    return detail["status"] == "succeeded"


async def token_for(receiver: Receiver, workflow_id: str) -> str:
    async def sent() -> str | None:
        found = [r.body["callback_token"] for r in receiver.requests if r.body["workflow_id"] == workflow_id]
        return found[0] if found else None

    token: str = await eventually(sent, within=60)
    return token


async def call_back(app: Instance, token: str) -> None:
    body = {"callback_token": token, "status": "succeeded", "endpoint": "postgres://db", "credentials": {"pw": "x"}}
    response = await app.client.post(f"{PREFIX}/callback", json=body)
    assert response.status_code == 200, response.text


def executions(path: Path) -> list[tuple[str, str, int]]:
    """``(workflow id, step, pid)`` of every execution of a step, from the steps' own log."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [(workflow, step, int(pid)) for workflow, step, pid in (line.split() for line in lines)]


ONCE_EACH = ["workflow.started", "workflow.step_waiting", "workflow.succeeded"]
"""The change log of a workflow that waited for its callback and succeeded: each topic once, whatever was replayed."""


async def logged_topics(url: str) -> tuple[list[int], dict[str, list[str]]]:
    """Every id of the store's change log, and the topics logged per subject, in order."""
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("select id, subject, topic from registry_events order by id"))).all()
    finally:
        await engine.dispose()
    topics: dict[str, list[str]] = {}
    for _, subject, topic in rows:
        topics.setdefault(subject, []).append(topic)
    return [row[0] for row in rows], topics


async def test_sqlite_sigkill_while_waiting_for_the_callback_then_restart(tmp_path: Path) -> None:
    log = tmp_path / "executions.log"
    settings = app_settings(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}", log)
    async with Receiver() as receiver, instances(tmp_path, settings) as start:
        first = await start(DURABLE_SIDE_SECONDS="1")  # `side` ends after `external` waits; in `second` at once
        await register(first, receiver)
        workflow_id = await start_workflow(first)
        token = await token_for(receiver, workflow_id)
        await detail_when(first, workflow_id, waiting)
        await first.kill()
        assert (tmp_path / "registry-dbos.sqlite").exists()  # DBOS's own file, beside the registry's

        second = await start()  # same files, same (default) executor id: DBOS recovers the waiting workflow
        await call_back(second, token)
        done = await detail_when(second, workflow_id, succeeded)
        assert {step["name"]: (step["status"], step["attempts"]) for step in done["steps"]} == dict.fromkeys(
            STEPS, ("succeeded", 1)
        )
        ran = executions(log)
        assert Counter(step for _, step, _ in ran) == {"prepare": 1, "side": 1, "finish": 1}  # none ran twice
        assert {pid for _, step, pid in ran if step == "finish"} == {second.process.pid}
        assert len(receiver.requests) == 1  # the external service was notified once
        _, topics = await logged_topics(settings["REGISTRY_STORE_URL"])
        assert topics[workflow_id] == ONCE_EACH


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A database of its own (``test_e_*``) for two app instances: the registry's tables and DBOS's schema."""
    require_server("postgres")
    name = f"{make_url(POSTGRES_URL).database}_http_{uuid4().hex[:8]}"
    admin = create_async_engine(POSTGRES_URL, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.mark.postgres
async def test_two_instances_on_one_postgres_run_every_step_exactly_once(tmp_path: Path) -> None:
    log = tmp_path / "executions.log"
    async with Receiver() as receiver, postgres_database() as url, instances(tmp_path, app_settings(url, log)) as start:
        a, b = await start(), await start()
        await register(a, receiver)
        workflows = [await start_workflow(app) for app in (a, b, a, b, a, b)]
        for index, workflow_id in enumerate(workflows):
            token = await token_for(receiver, workflow_id)
            await call_back((b, a)[index % 2], token)  # the callback lands on the other instance
        for workflow_id in workflows:
            done = await detail_when(a, workflow_id, succeeded)
            assert [step["attempts"] for step in done["steps"]] == [1, 1, 1, 1]
        ran = Counter((workflow, step) for workflow, step, _ in executions(log))
        assert ran == {(workflow, step): 1 for workflow in workflows for step in ("prepare", "side", "finish")}
        assert len(receiver.requests) == len(workflows)
        assert {pid for _, _, pid in executions(log)} == {a.process.pid, b.process.pid}  # both did work
        ids, topics = await logged_topics(url)
        assert ids == list(range(1, len(ids) + 1))  # the two instances' services and workflows: one sequence
        assert {workflow_id: topics[workflow_id] for workflow_id in workflows} == dict.fromkeys(workflows, ONCE_EACH)
        assert topics["billing"] == ["service.registered"]


@pytest.mark.postgres
async def test_the_survivor_recovers_a_killed_instances_workflows(tmp_path: Path) -> None:
    log = tmp_path / "executions.log"
    fast = {"REGISTRY_PROVISIONING_INSTANCE_TTL_SECONDS": "2", "REGISTRY_SWEEP_INTERVAL_SECONDS": "0.5"}
    async with (
        Receiver() as receiver,
        postgres_database() as url,
        instances(tmp_path, app_settings(url, log, **fast)) as start,
    ):
        doomed, survivor = await start(), await start()
        await register(doomed, receiver)
        own = [await start_workflow(doomed) for _ in range(2)]
        tokens = [await token_for(receiver, workflow_id) for workflow_id in own]
        for workflow_id in own:
            await detail_when(survivor, workflow_id, waiting)

        query = {"q": "registry-executor-"}
        listed = await survivor.client.get("/api/v1/registry/services", params=query, headers=SERVICE)
        slugs = [service["slug"] for service in listed.json()["data"]]
        assert len(slugs) == 2, listed.text  # both instances registered themselves
        await doomed.kill()

        async def recovered() -> bool:  # the doomed registration expired; the survivor took over and removed it
            for slug in slugs:
                if (await survivor.client.get(f"/api/v1/registry/services/{slug}", headers=SERVICE)).status_code == 404:
                    return True
            return False

        await eventually(recovered, within=30, interval=0.2)
        for token in tokens:
            await call_back(survivor, token)
        for workflow_id in own:
            done = await detail_when(survivor, workflow_id, succeeded)
            assert done["steps"][3]["outputs"]["pid"] == survivor.process.pid
        ran = executions(log)
        assert Counter((workflow, step) for workflow, step, _ in ran) == {
            (workflow, step): 1 for workflow in own for step in ("prepare", "side", "finish")
        }
        assert {pid for _, step, pid in ran if step != "finish"} == {doomed.process.pid}
        assert {pid for _, step, pid in ran if step == "finish"} == {survivor.process.pid}
        _, topics = await logged_topics(url)  # the survivor replayed the doomed runs: nothing logged twice
        assert {workflow_id: topics[workflow_id] for workflow_id in own} == dict.fromkeys(own, ONCE_EACH)
