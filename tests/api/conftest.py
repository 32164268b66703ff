"""An app per backend with the registry mounted, a manual clock, and keys for two services and an admin."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from litestar_registry import ManualClock, RegistryConfig, RegistryPlugin
from tests.backends import backend_url, wipe
from tests.clients import serve

KEY_A = "key-a-0123456789abcdef"
KEY_B = "key-b-0123456789abcdef"
KEY_ADMIN = "key-admin-0123456789abcdef"
KEY_STRANGER = "key-stranger-0123456789abcdef"
A = {"Authorization": f"Bearer {KEY_A}"}
B = {"Authorization": f"Bearer {KEY_B}"}
ADMIN = {"Authorization": f"Bearer {KEY_ADMIN}"}
STRANGER = {"Authorization": f"Bearer {KEY_STRANGER}"}


def registration(slug: str = "billing", **fields: Any) -> dict[str, Any]:
    """A valid seed-000 registration body."""
    body: dict[str, Any] = {
        "slug": slug,
        "name": slug.title(),
        "version": "1.0.0",
        "description": f"the {slug} service",
        "base_url": f"http://{slug}:8080",
        "health_url": f"http://{slug}:8080/health",
        "endpoints": [
            {"name": "api", "url": f"http://{slug}:8080/api", "protocol": "http", "method": "GET"},
            {"name": "events", "url": f"grpc://{slug}:9090", "protocol": "grpc"},
        ],
        "capabilities": ["invoicing"],
        "tags": ["finance"],
        "metadata": {"team": "blue"},
        "owner": {"name": "Ann", "email": "ann@example.com"},
        "documentation_url": f"http://docs/{slug}",
        "ttl_seconds": 30,
    }
    body.update(fields)
    return body


@dataclass
class Harness:
    """A running app, its client, its plugin (store and registry) and its clock."""

    client: httpx.AsyncClient
    plugin: RegistryPlugin
    clock: ManualClock
    dependents: dict[str, list[str]] = field(default_factory=dict)

    @property
    def registry(self) -> Any:
        return self.plugin.registry

    async def register(self, slug: str = "billing", headers: dict[str, str] = A, **fields: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/registry/register", json=registration(slug, **fields), headers=headers
        )
        assert response.status_code == 201, response.text
        return dict(response.json()["data"])


MakeApp = Callable[..., "Harness"]


@pytest.fixture
async def make_harness(backend: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Build harnesses on the test's backend; every one is shut down at the end of the test."""
    stack = AsyncExitStack()
    first: list[Harness] = []

    async def build(**overrides: Any) -> Harness:
        clock = ManualClock()
        dependents: dict[str, list[str]] = {}

        async def check(slug: str) -> list[str]:
            return dependents.get(slug, [])

        settings: dict[str, Any] = {
            "store_url": backend_url(backend, tmp_path),
            "clock": clock,
            "service_keys": {"team-a": KEY_A, "team-b": KEY_B, "stranger": KEY_STRANGER},
            "admin_keys": {"ops": KEY_ADMIN},
            "auto_approve_accounts": frozenset({"team-a", "team-b"}),
            "sweeper_enabled": False,
            "dependents_check": check,
        }
        settings.update(overrides)
        plugin = RegistryPlugin(RegistryConfig(**settings))
        client = await stack.enter_async_context(serve(Litestar(plugins=[plugin])))
        harness = Harness(client=client, plugin=plugin, clock=clock, dependents=dependents)
        if not first:
            await wipe(plugin.store)
            first.append(harness)
        return harness

    async with stack:
        yield build
        if first:
            await wipe(first[0].plugin.store)


@pytest.fixture
async def h(make_harness: Callable[..., Any]) -> Harness:
    harness: Harness = await make_harness()
    return harness
