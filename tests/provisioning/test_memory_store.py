"""Provisioning beside the memory store: records in memory, DBOS in a temporary file that goes when the app stops."""

from __future__ import annotations

import os
from pathlib import Path

from litestar import Litestar

from litestar_registry import RegistryConfig, RegistryPlugin
from litestar_registry.provisioning.store import MemoryProvisioningStore
from tests.clients import serve
from tests.provisioning.apps import ACME, PREFIX, SERVICE, settings
from tests.provisioning.conftest import eventually


async def test_provisioning_runs_beside_the_memory_store_and_forgets_with_it(tmp_path: Path) -> None:
    plugin = RegistryPlugin(RegistryConfig(**settings("sqlite", tmp_path, store_url="memory://")))
    async with serve(Litestar(plugins=[plugin])) as client:
        engine = plugin.provisioning.engine
        assert engine is not None
        assert isinstance(engine.store, MemoryProvisioningStore)
        temporary = plugin.durable.temporary
        assert temporary is not None
        assert os.path.exists(os.path.join(temporary, "dbos.sqlite"))  # noqa: ASYNC240 - a quick stat in a test
        body = {"slug": "billing", "name": "Billing", "version": "1"}
        assert (await client.post("/api/v1/registry/register", json=body, headers=SERVICE)).status_code == 201
        start = {"service_slug": "billing", "definition": "quick"}
        workflow = (await client.post(f"{PREFIX}/workflows", json=start, headers=ACME)).json()["data"]

        async def succeeded() -> bool:
            detail = await client.get(f"{PREFIX}/workflows/{workflow['id']}", headers=ACME)
            return bool(detail.json()["data"]["status"] == "succeeded")

        await eventually(succeeded)
    assert not os.path.exists(temporary)  # noqa: ASYNC240 - a quick stat in a test
