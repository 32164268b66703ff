"""Does one more register (and one ping) cost the same with 10 services as with 10,000?

Run: ``.venv/bin/python bench/bench_register.py [--backends memory,sqlite,postgres,redis] [--sizes 10,10000]``

For each backend and size the store is filled through the Registry, then ``--ops`` further registrations and pings
are timed one by one; the median and p90 per operation are printed, with the ratio of the largest size to the
smallest. The machine is noisy: compare ratios within one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from litestar_registry.core.auth import Principal, Role
from litestar_registry.core.models import Registration
from litestar_registry.core.registry import Registry
from litestar_registry.store import ServiceStore, create_store

ADMIN = Principal(account="bench", role=Role.ADMIN)
URLS = {
    "memory": "memory://",
    "postgres": os.environ.get("REGISTRY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
    "redis": os.environ.get("REGISTRY_TEST_REDIS_URL", "redis://127.0.0.1:6379/14"),
}


def registration(slug: str) -> Registration:
    return Registration(slug=slug, name=slug, version="1.0.0", tags=("bench",), capabilities=("x",))


async def fill(registry: Registry, count: int) -> None:
    batch = 200
    for start in range(0, count, batch):
        await asyncio.gather(
            *(registry.register(registration(f"fill-{i:06d}"), ADMIN) for i in range(start, min(count, start + batch)))
        )


async def timed(ops: int, action: object) -> list[float]:
    samples = []
    for i in range(ops):
        began = time.perf_counter()
        await action(i)  # type: ignore[operator]
        samples.append(time.perf_counter() - began)
    return samples


async def measure(backend: str, size: int, ops: int, workdir: Path) -> tuple[list[float], list[float]]:
    url = URLS.get(backend) or f"sqlite+aiosqlite:///{workdir / f'bench-{size}.db'}"
    store: ServiceStore = create_store(url, create_schema=True)
    await store.open()
    try:
        clear = getattr(store, "_clear_for_tests", None)
        if clear:
            await clear()
        registry = Registry(store)
        await fill(registry, size)
        registers = await timed(ops, lambda i: registry.register(registration(f"more-{i:06d}"), ADMIN))
        pings = await timed(ops, lambda i: registry.ping(f"fill-{(i * 7919) % size:06d}"))
        if clear:
            await clear()
        return registers, pings
    finally:
        await store.close()


def describe(samples: list[float]) -> str:
    ordered = sorted(samples)
    return f"median {statistics.median(ordered) * 1e6:8.1f} us  p90 {ordered[int(len(ordered) * 0.9)] * 1e6:8.1f} us"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="memory,sqlite,postgres,redis")
    parser.add_argument("--sizes", default="10,10000")
    parser.add_argument("--ops", type=int, default=300)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            medians: dict[str, list[float]] = {"register": [], "ping": []}
            for size in sizes:
                registers, pings = await measure(backend, size, args.ops, Path(tmp))
                print(f"{backend:8} n={size:>6}  register {describe(registers)}   ping {describe(pings)}")
                medians["register"].append(statistics.median(registers))
                medians["ping"].append(statistics.median(pings))
            ratios = "  ".join(f"{op} x{values[-1] / values[0]:.2f}" for op, values in medians.items())
            print(f"{backend:8} n={sizes[-1]} vs n={sizes[0]}: {ratios}")


if __name__ == "__main__":
    asyncio.run(main())
