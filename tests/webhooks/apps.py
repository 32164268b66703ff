"""Apps with webhooks on, for the tests: every backend, keys, a real subscriber on 127.0.0.1, an injected clock, and
an instant sleep that records every wait the delivery workflows ask for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar

from litestar_registry import ManualClock, RegistryConfig, RegistryPlugin
from litestar_registry.webhooks.store.sqlalchemy import SQLAlchemyWebhookStore
from tests.backends import backend_url
from tests.clients import serve
from tests.provisioning.apps import clear as clear_provisioning
from tests.provisioning.conftest import KEY, eventually

PREFIX = "/api/v1/admin/webhooks"
SERVICE_KEY = "service-team-0123456789abcdef"
STRANGER_KEY = "service-stranger-0123456789ab"
ADMIN_KEY = "admin-ops-0123456789abcdef"
TENANT_KEY = "tenant-acme-0123456789abcdef"
SERVICE = {"Authorization": f"Bearer {SERVICE_KEY}"}
STRANGER = {"Authorization": f"Bearer {STRANGER_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
TENANT = {"Authorization": f"Bearer {TENANT_KEY}"}
ALL_SERVICE_TOPICS = [
    "service.registered",
    "service.updated",
    "service.version_changed",
    "service.approved",
    "service.rejected",
    "service.degraded",
    "service.recovered",
    "service.expired",
    "service.deregistered",
]


def settings(backend: str, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """Plugin settings with webhooks on, for ``backend``; loopback allowed (the subscriber is on 127.0.0.1)."""
    found: dict[str, Any] = {
        "store_url": backend_url(backend, tmp_path),
        "service_keys": {"team": SERVICE_KEY, "stranger": STRANGER_KEY},
        "admin_keys": {"ops": ADMIN_KEY},
        "tenant_keys": {"acme": TENANT_KEY},
        "auto_approve_accounts": frozenset({"team"}),
        "sweeper_enabled": False,
        "ttl_path": "",
        "webhooks": True,
        "webhooks_keys": (KEY,),
        "webhooks_allow_loopback": True,
        "webhooks_retry_jitter": 0.0,
        "webhooks_relay_interval_seconds": 0.05,
        "webhooks_timeout_seconds": 5.0,
    }
    if backend == "redis":  # subscriptions need SQL: a file of their own here, not the working directory's
        found["webhooks_database_url"] = f"sqlite+aiosqlite:///{tmp_path / 'webhooks.db'}"
    if backend == "postgres":
        # DBOS shares PostgreSQL, so the instance registers itself and pings; the cleanup between tests removes the
        # registration, and a ping registering it again would add an event mid-test: no ping within a test.
        found["provisioning_instance_ttl_seconds"] = 3600.0
    return {**found, **overrides}


@dataclass
class Sleeper:
    """The delivery workflows' sleep in tests: instant, recorded, and moving the clock by what was asked."""

    clock: ManualClock
    slept: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(seconds)
        await asyncio.sleep(0)


@dataclass
class App:
    """A running app with webhooks: its client, plugin, clock and sleep."""

    client: httpx.AsyncClient
    plugin: RegistryPlugin
    clock: ManualClock
    sleeper: Sleeper

    async def subscribe(self, url: str, topics: list[str] | None = None, **extra: Any) -> dict[str, Any]:
        body = {"url": url, "topics": topics or ALL_SERVICE_TOPICS, **extra}
        response = await self.client.post(f"{PREFIX}/subscriptions", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        return dict(response.json()["data"])

    async def register(self, slug: str, headers: dict[str, str] = SERVICE, **fields: Any) -> httpx.Response:
        body = {"slug": slug, "name": slug.title(), "version": "1.0.0", **fields}
        response = await self.client.post("/api/v1/registry/register", json=body, headers=headers)
        assert response.status_code in (200, 201), response.text
        return response

    async def deliveries(self, subscription_id: str, **params: Any) -> list[dict[str, Any]]:
        response = await self.client.get(
            f"{PREFIX}/subscriptions/{subscription_id}/deliveries", params=params, headers=ADMIN
        )
        assert response.status_code == 200, response.text
        return list(response.json()["data"])

    async def delivery_when(self, subscription_id: str, state: str, count: int = 1) -> list[dict[str, Any]]:
        async def check() -> list[dict[str, Any]] | None:
            found = await self.deliveries(subscription_id, state=state)
            return found if len(found) >= count else None

        result: list[dict[str, Any]] = await eventually(check, within=30)
        return result

    async def attempts(self, webhook_id: str) -> list[dict[str, Any]]:
        response = await self.client.get(f"{PREFIX}/deliveries/{webhook_id}/attempts", headers=ADMIN)
        assert response.status_code == 200, response.text
        return list(response.json()["data"])


async def clear(plugin: RegistryPlugin) -> None:
    """Empty the registry and the webhook read model, and provisioning's when it is on (the server backends are
    shared between tests).

    The relay stops meanwhile: wiping the log starts its ids again at 1, and a round that read the old log would move
    the emptied cursor back past the new ids.
    """
    relay = plugin.webhooks.relay
    if relay is not None:
        await relay.stop()
    await clear_provisioning(plugin)  # the registry store, and provisioning's read model if any
    engine = plugin.webhooks.engine
    if engine is not None and isinstance(engine.store, SQLAlchemyWebhookStore):
        await engine.store._clear_for_tests()
    if relay is not None:
        relay.start()


def real_time_clock() -> ManualClock:
    """A manual clock set to now: signatures then verify with ``standardwebhooks`` (it checks against real time)."""
    return ManualClock(datetime.now(UTC))


@asynccontextmanager
async def running_app(backend: str, tmp_path: Path, **overrides: Any) -> AsyncIterator[App]:
    """The app on ``backend``, served in process on this loop; emptied before and after."""
    clock = overrides.pop("clock", None) or real_time_clock()
    plugin = RegistryPlugin(RegistryConfig(**settings(backend, tmp_path, clock=clock, **overrides)))
    sleeper = Sleeper(clock)
    plugin.webhooks.sleep = sleeper
    async with serve(Litestar(plugins=[plugin])) as client:
        await clear(plugin)
        try:
            yield App(client=client, plugin=plugin, clock=clock, sleeper=sleeper)
        finally:
            await clear(plugin)
