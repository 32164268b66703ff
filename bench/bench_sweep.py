"""What does one sweep cost, with ``--due`` services due among ``--sizes`` registered?

Run: ``.venv/bin/python bench/bench_sweep.py [--backends memory,sqlite,postgres,redis] [--sizes 1000,100000]``

For each backend and size, a store of its own (as ``bench_register.py`` opens them) is filled in bulk with services
not due for an hour; then ``--sets`` sets of ``--due`` services are registered with a 60 s TTL, set k one second after
set k-1, and ``sweep_due(limit=due)`` is timed once per set, at the instant only that set is due (each call degrades
exactly ``due`` services). PostgreSQL gets an ``ANALYZE`` after the bulk fill (right after loading 100,000 rows, before
autovacuum has analyzed them, a sweep measured 4x slower). The sweep should cost what is due, not how many services
exist: compare the sizes' medians.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_register import ADMIN, close_store, fill, open_store
from sqlalchemy import text

from litestar_registry.config import RegistryConfig
from litestar_registry.core import states
from litestar_registry.core.clock import ManualClock
from litestar_registry.core.models import Registration
from litestar_registry.core.registry import Registry
from litestar_registry.plugin import registry_policy


async def bench(backend: str, size: int, due: int, sets: int, workdir: Path) -> float:
    store = await open_store(backend, size, workdir)
    try:
        clock = ManualClock()
        registry = Registry(
            store, registry_policy(RegistryConfig(store_url="memory://", default_ttl_seconds=3600)), clock=clock
        )
        await fill(registry, size)
        if backend == "postgres":  # planner statistics as autovacuum would leave them, not as of an empty table
            async with store._single() as conn:  # type: ignore[attr-defined]
                await conn.execute(text("ANALYZE registry_services"))
        start = clock.now()
        for k in range(sets):
            clock.set(start + timedelta(seconds=k))
            await asyncio.gather(
                *(
                    registry.register(
                        Registration(slug=f"due-{k}-{i:03d}", name="d", version="1", ttl_seconds=60), ADMIN
                    )
                    for i in range(due)
                )
            )
        samples = []
        for k in range(sets):
            now = start + timedelta(seconds=60 + k, milliseconds=500)
            began = time.perf_counter()
            changed = await store.sweep_due(now, states.advance, limit=due)
            samples.append(time.perf_counter() - began)
            assert len(changed) == due, (backend, size, k, len(changed))
        median = statistics.median(samples) * 1000
        print(
            f"{backend:8} n={size:>7}  sweep of {due} due: median {median:6.1f} ms  max {max(samples) * 1000:6.1f} ms"
        )
        return median
    finally:
        await close_store(backend, size, store)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="memory,sqlite,postgres,redis")
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--due", type=int, default=100)
    parser.add_argument("--sets", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            medians = [await bench(backend, size, args.due, args.sets, Path(tmp)) for size in sizes]
            print(f"{backend:8} n={sizes[-1]} vs n={sizes[0]}: sweep x{medians[-1] / medians[0]:.2f}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
