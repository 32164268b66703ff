"""The sweep on every backend: degrade, expire, and claim each service once across app instances."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from litestar_registry import RegistryConfig, RegistryPlugin
from litestar_registry.core.auth import Principal, Role
from litestar_registry.core.clock import ManualClock
from litestar_registry.core.models import Registration, ServiceStatus
from litestar_registry.core.registry import Registry
from litestar_registry.plugin import registry_policy
from litestar_registry.store import MemoryServiceStore, ServiceStore
from tests.backends import backend_url, wipe

ADMIN = Principal(account="ops", role=Role.ADMIN)


async def test_sweep_persists_degradation_then_expiry(store: ServiceStore) -> None:
    clock = ManualClock()
    registry = Registry(store, registry_policy(RegistryConfig(store=store, sweep_batch_size=3)), clock=clock)
    for i in range(7):
        await registry.register(Registration(slug=f"svc-{i}", name="S", version="1"), ADMIN)
    clock.advance(31)
    changes = await registry.sweep()  # three batches of at most three
    assert len(changes) == 7
    assert {after.status for _, after in changes} == {ServiceStatus.DEGRADED}
    assert await registry.sweep() == []
    clock.advance(60)
    changes = await registry.sweep()
    assert {(after.status, after.failure_count) for _, after in changes} == {(ServiceStatus.EXPIRED, 3)}
    assert (await store.get("svc-3")).status is ServiceStatus.EXPIRED


async def test_two_plugin_instances_sweeping_one_store_expire_each_service_once(backend: str, tmp_path: Path) -> None:
    """Two app instances share one store (for memory: one process, one store); every service expires exactly once."""
    clock = ManualClock()
    url = backend_url(backend, tmp_path)
    shared = MemoryServiceStore() if backend == "memory" else None
    plugins = [
        RegistryPlugin(RegistryConfig(store_url=url, store=shared, clock=clock, expiry_windows=1, sweep_batch_size=25))
        for _ in range(2)
    ]
    first, second = (plugin.registry for plugin in plugins)
    for plugin in plugins:
        await plugin.store.open()
    try:
        await wipe(first.store)
        for i in range(120):
            await first.register(Registration(slug=f"svc-{i:03d}", name="S", version="1"), ADMIN)
        clock.advance(31)
        results = await asyncio.gather(first.sweep(), second.sweep(), first.sweep(), second.sweep())
        expired = [after.slug for changes in results for _, after in changes]
        assert sorted(expired) == [f"svc-{i:03d}" for i in range(120)]  # each once: none twice, none missed
        assert all(after.status is ServiceStatus.EXPIRED for changes in results for _, after in changes)
        await wipe(first.store)
    finally:
        for plugin in plugins:
            await plugin.store.close()


class _SwallowingStore(MemoryServiceStore):
    """A store whose sweep, like a redis-py 8.1 command in flight, catches its cancellation and returns normally."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()

    async def sweep_due(self, *args: object, **kwargs: object) -> list[object]:  # type: ignore[override]
        self.entered.set()
        # The driver's bug: the cancellation is consumed, and the caller is handed a normal answer.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        return []


async def test_the_sweeper_stops_even_when_the_driver_swallows_its_cancellation() -> None:
    from litestar_registry.background import Sweeper

    store = _SwallowingStore()
    sweeper = Sweeper(Registry(store, registry_policy(RegistryConfig(store_url="memory://"))), interval=0.01)
    sweeper.start()
    await asyncio.wait_for(store.entered.wait(), 5)
    await asyncio.wait_for(sweeper.stop(), 5)  # before the fix: the loop slept again and stop() waited forever
