"""Apps with provisioning on, for the HTTP tests: tenants' keys, test definitions, SQLite or PostgreSQL.

Everything is real: the plugin's lifespan opens the registry store, the read model and DBOS; the callback step
notifies a real HTTP server (:class:`~tests.provisioning.receiver.Receiver`) on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
from litestar import Litestar

from litestar_registry import ManualClock, RegistryConfig, RegistryPlugin
from litestar_registry.provisioning import (
    Call,
    Callback,
    PermanentStepError,
    RetryPolicy,
    Step,
    StepContext,
    WorkflowDefinition,
)
from litestar_registry.provisioning.store.sqlalchemy import SQLAlchemyProvisioningStore
from tests.backends import POSTGRES_URL, require_server, wipe
from tests.clients import serve
from tests.provisioning.conftest import KEY
from tests.provisioning.receiver import Receiver

PREFIX = "/api/v1/provisioning"
ACME_KEY = "tenant-acme-0123456789abcdef"
GLOBEX_KEY = "tenant-globex-0123456789abcdef"
SERVICE_KEY = "service-team-0123456789abcdef"
ADMIN_KEY = "admin-ops-0123456789abcdef"
ACME = {"Authorization": f"Bearer {ACME_KEY}"}
GLOBEX = {"Authorization": f"Bearer {GLOBEX_KEY}"}
SERVICE = {"Authorization": f"Bearer {SERVICE_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
CALLBACK_BASE = "https://registry.example"


class PlanInputs(msgspec.Struct, forbid_unknown_fields=True):
    """What the ``typed`` definition's inputs must look like."""

    plan: str
    size: int = 1


async def allocate(ctx: StepContext) -> dict[str, Any]:
    return {"database": f"{ctx.service_slug}-db", "plan": ctx.inputs.get("plan", "basic")}


async def finish(ctx: StepContext) -> dict[str, Any]:
    return {"ready": True, "endpoint": ctx.dependencies["external"]["endpoint"]}


async def quick(ctx: StepContext) -> dict[str, Any]:
    if ctx.inputs.get("fail"):
        raise PermanentStepError("told to fail")
    return {"ok": True}


def definitions() -> list[WorkflowDefinition]:
    """``provision`` (allocate, then wait for the callback, then finish), ``quick`` (one step) and ``typed``."""
    once = RetryPolicy(attempts=1)
    return [
        WorkflowDefinition(
            "provision",
            [
                Step("allocate", Call(allocate), retry=once),
                Step("external", Callback(), depends_on=("allocate",), timeout_seconds=600, retry=once),
                Step("finish", Call(finish), depends_on=("external",), retry=once),
            ],
        ),
        WorkflowDefinition("quick", [Step("only", Call(quick), retry=once)]),
        WorkflowDefinition("typed", [Step("only", Call(quick), retry=once)], inputs=PlanInputs),
    ]


def provisioning_settings() -> dict[str, Any]:
    """The settings that turn provisioning on with the test definitions (also for apps with more than provisioning)."""
    return {
        "provisioning": True,
        "provisioning_keys": (KEY,),
        "provisioning_callback_base_url": CALLBACK_BASE,
        "provisioning_allow_loopback": True,
        "provisioning_definitions": definitions(),
    }


def settings(backend: str, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """Plugin settings with provisioning on, for ``backend`` (``sqlite`` or ``postgres``)."""
    require_server(backend)
    store_url = POSTGRES_URL if backend == "postgres" else f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    return {
        "store_url": store_url,
        "service_keys": {"team": SERVICE_KEY},
        "admin_keys": {"ops": ADMIN_KEY},
        "tenant_keys": {"acme": ACME_KEY, "globex": GLOBEX_KEY},
        "auto_approve_all": True,
        "sweeper_enabled": False,
        **provisioning_settings(),
        **overrides,
    }


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The problem+json body of ``response``, checked to have ``status`` and ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = dict(response.json())
    assert (body["status"], body["code"], body["type"]) == (status, code, f"urn:litestar-registry:problem:{code}")
    assert {"title", "detail", "instance", "trace_id"} <= body.keys()
    assert ("errors" in body) == (status == 422)  # field errors belong to validation failures only
    return body


@dataclass
class App:
    """A running app with provisioning, its client, plugin, clock, and the external service it notifies."""

    client: httpx.AsyncClient
    plugin: RegistryPlugin
    clock: ManualClock
    receiver: Receiver

    async def register(self, slug: str, *, endpoint: bool = True) -> None:
        """Register ``slug`` (with a ``provisioning`` endpoint at the receiver, unless told otherwise)."""
        body: dict[str, Any] = {"slug": slug, "name": slug.title(), "version": "1.0.0"}
        if endpoint:
            body["endpoints"] = [{"name": "provisioning", "url": self.receiver.url}]
        response = await self.client.post("/api/v1/registry/register", json=body, headers=SERVICE)
        assert response.status_code == 201, response.text

    async def start(
        self, slug: str, definition: str = "provision", headers: dict[str, str] = ACME, **inputs: Any
    ) -> dict[str, Any]:
        body = {"service_slug": slug, "definition": definition, "inputs": inputs}
        response = await self.client.post(f"{PREFIX}/workflows", json=body, headers=headers)
        assert response.status_code == 201, response.text
        self.clock.advance(0.002)  # ids are UUIDv7 of the clock's time: the next one sorts after this one
        return dict(response.json()["data"])

    async def detail(self, workflow_id: str, headers: dict[str, str] = ACME) -> dict[str, Any]:
        response = await self.client.get(f"{PREFIX}/workflows/{workflow_id}", headers=headers)
        assert response.status_code == 200, response.text
        return dict(response.json()["data"])


async def clear(plugin: RegistryPlugin) -> None:
    """Empty the registry and the read model (the PostgreSQL test database is shared)."""
    await wipe(plugin.store)
    engine = plugin.provisioning.engine
    if engine is not None and isinstance(engine.store, SQLAlchemyProvisioningStore):
        await engine.store._clear_for_tests()


@asynccontextmanager
async def running_app(backend: str, tmp_path: Path, receiver: Receiver, **overrides: Any) -> AsyncIterator[App]:
    """The app on ``backend``, served in process on this loop; emptied before and after."""
    clock = ManualClock()
    plugin = RegistryPlugin(RegistryConfig(**settings(backend, tmp_path, clock=clock, **overrides)))
    async with serve(Litestar(plugins=[plugin])) as client:
        await clear(plugin)
        try:
            yield App(client=client, plugin=plugin, clock=clock, receiver=receiver)
        finally:
            await clear(plugin)
