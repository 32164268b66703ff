"""A host that configures DBOS itself keeps its instance: the plugin launches it if the host has not, runs its
workflow there, and leaves the instance to the host at shutdown (one DBOS per process)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dbos import DBOS

from litestar_registry.provisioning.runtime import existing_instance
from tests.provisioning.apps import running_app
from tests.provisioning.conftest import eventually
from tests.provisioning.receiver import Receiver


async def test_the_hosts_own_dbos_runs_the_workflows(tmp_path: Path) -> None:
    host_dbos = tmp_path / "host-dbos.sqlite"
    config: Any = {
        "name": "host-app",
        "system_database_url": f"sqlite:///{host_dbos}",
        "application_version": "host-1",
        "executor_id": "host-executor",
    }
    instance = DBOS(config=config)  # the host's, constructed before the app starts; not launched yet
    try:
        async with Receiver() as receiver, running_app("sqlite", tmp_path, receiver) as app:
            assert app.plugin.provisioning.engine is not None
            assert app.plugin.provisioning.engine.executor_id == "host-executor"
            await app.register("billing")
            started = await app.start("billing", "quick")

            async def done() -> bool:
                return (await app.detail(started["id"]))["status"] == "succeeded"

            await eventually(done)
        assert existing_instance() is instance  # still the host's, and still running
        assert getattr(instance, "_launched", False)
        assert host_dbos.exists()
        assert not (tmp_path / "registry-dbos.sqlite").exists()  # the plugin made no DBOS of its own
    finally:
        await asyncio.to_thread(DBOS.destroy)  # what the host's own shutdown does
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor())
