"""Does one more register (and one ping) cost the same with 10 services as with 100,000?

Run: ``.venv/bin/python bench/bench_register.py [--backends memory,sqlite,postgres,redis] [--sizes 10,100000]``

For each backend, one store per size is opened side by side (SQLite files, PostgreSQL schemas and Redis namespaces of
their own) and filled in bulk with the records the Registry builds (``Registry._apply``): multi-row INSERTs on SQL,
pipelined ``create`` scripts on Redis, the Registry itself in memory; 100,000 services take seconds. Then
``--rounds`` rounds time ``--ops`` further registrations and pings, one by one, alternating between the sizes, so
that whatever the machine or the server does meanwhile (another process, autovacuum, a checkpoint) falls on every
size alike. Each size reports its best round (lowest median), as
``timeit`` takes the best of its repeats, with the ratio of the largest size to the smallest. The machine is noisy:
compare ratios within one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine

from litestar_registry.config import RegistryConfig
from litestar_registry.core.auth import Principal, Role
from litestar_registry.core.models import Registration, ServiceStatus, VersionEntry
from litestar_registry.core.registry import Registry
from litestar_registry.plugin import registry_policy
from litestar_registry.store import MemoryServiceStore, ServiceStore, create_store
from litestar_registry.store.redis import RedisServiceStore
from litestar_registry.store.sqlalchemy import SQLAlchemyServiceStore
from litestar_registry.store.sqlalchemy.store import _history_row, _labels, _row, _services, _versions, label_rows

ADMIN = Principal(account="bench", role=Role.ADMIN)
POSTGRES = os.environ.get("REGISTRY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("REGISTRY_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
FILL_CHUNK = 2_000


def registration(slug: str) -> Registration:
    return Registration(slug=slug, name=slug, version="1.0.0", tags=("bench",), capabilities=("x",))


async def postgres_schema(name: str, *, drop: bool = False) -> None:
    engine = create_async_engine(POSTGRES)
    try:
        async with engine.begin() as conn:
            sql = f'DROP SCHEMA IF EXISTS "{name}" CASCADE' if drop else f'CREATE SCHEMA IF NOT EXISTS "{name}"'
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def open_store(backend: str, size: int, workdir: Path) -> ServiceStore:
    """An empty store of ``backend`` for the services of one size, apart from the other sizes' stores."""
    options: dict[str, Any] = {}
    if backend == "memory":
        url = "memory://"
    elif backend == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / f'bench-{size}.db'}"
    elif backend == "postgres":
        await postgres_schema(f"bench_{size}", drop=True)
        await postgres_schema(f"bench_{size}")
        url, options = (
            POSTGRES,
            {"engine_options": {"connect_args": {"server_settings": {"search_path": f"bench_{size}"}}}},
        )
    else:
        url, options = REDIS, {"namespace": f"bench-{size}"}
    store = create_store(url, create_schema=True, **options)
    await store.open()
    clear = getattr(store, "_clear_for_tests", None)
    if clear is not None:
        await clear()
    return store


async def close_store(backend: str, size: int, store: ServiceStore) -> None:
    clear = getattr(store, "_clear_for_tests", None)
    if clear is not None:
        await clear()
    await store.close()
    if backend == "postgres":
        await postgres_schema(f"bench_{size}", drop=True)


async def fill(registry: Registry, count: int, make: Callable[[int], Registration] | None = None) -> float:
    """Register ``count`` services (``make(i)`` for i in 0..count-1, default ``fill-000000``...) in bulk.

    The records are the ones the Registry builds (``Registry._apply``), written with multi-row INSERTs on SQL and
    pipelined ``create`` scripts on Redis, so 100,000 services take seconds; the memory store goes through the
    Registry itself. Returns the seconds it took.
    """
    build = make or (lambda i: registration(f"fill-{i:06d}"))
    began = time.perf_counter()
    store = registry.store
    now = registry.clock.now()
    for start in range(0, count, FILL_CHUNK):
        batch = [build(i) for i in range(start, min(count, start + FILL_CHUNK))]
        if isinstance(store, MemoryServiceStore):
            await asyncio.gather(*(registry.register(r, ADMIN) for r in batch))
            continue
        records = [registry._apply(None, r, ADMIN, now, ServiceStatus.ACTIVE) for r in batch]
        firsts = [VersionEntry(slug=r.slug, version=r.version, previous_version=None, recorded_at=now) for r in records]
        if isinstance(store, SQLAlchemyServiceStore):
            async with store._write() as conn:
                await conn.execute(insert(_services), [{"slug": r.slug, **_row(r, 1)} for r in records])
                await conn.execute(insert(_versions), [_history_row(first) for first in firsts])
                await conn.execute(insert(_labels), [row for r in records for row in label_rows(r)])
        else:
            assert isinstance(store, RedisServiceStore)
            async with store._use() as link:
                await store._run_batch(link, [store._create_call(r, f) for r, f in zip(records, firsts, strict=True)])
    return time.perf_counter() - began


async def timed(ops: int, action: Callable[[int], Awaitable[object]]) -> list[float]:
    samples = []
    for i in range(ops):
        began = time.perf_counter()
        await action(i)
        samples.append(time.perf_counter() - began)
    return samples


def describe(samples: list[float]) -> str:
    ordered = sorted(samples)
    return f"median {statistics.median(ordered) * 1e6:8.1f} us  p90 {ordered[int(len(ordered) * 0.9)] * 1e6:8.1f} us"


async def one_round(registry: Registry, size: int, ops: int, index: int) -> tuple[list[float], list[float]]:
    """``ops`` new registrations, then ``ops`` pings spread over the filled services, each timed alone."""
    new = [registration(f"more{index}-{i:06d}") for i in range(ops)]
    registers = await timed(ops, lambda i: registry.register(new[i], ADMIN))
    pings = await timed(ops, lambda i: registry.ping(f"fill-{(i * 7919) % size:06d}"))
    return registers, pings


async def bench(backend: str, sizes: list[int], ops: int, rounds: int, workdir: Path) -> dict[str, Any]:
    """Fill one store per size, time the rounds, print them; the medians (us) and the ratios of largest to smallest."""
    stores = {size: await open_store(backend, size, workdir) for size in sizes}
    try:
        policy = registry_policy(RegistryConfig(store_url="memory://"))
        registries = {size: Registry(store, policy) for size, store in stores.items()}
        for size, registry in registries.items():
            print(f"{backend:8} n={size:>6}  filled in {await fill(registry, size):.1f} s", flush=True)
        rounds_of: dict[tuple[int, str], list[list[float]]] = {
            (s, op): [] for s in sizes for op in ("register", "ping")
        }
        for r in range(rounds):
            for size, registry in registries.items():  # alternating: drift falls on every size alike
                registers, pings = await one_round(registry, size, ops, r)
                rounds_of[size, "register"].append(registers)
                rounds_of[size, "ping"].append(pings)
        best = {key: min(samples, key=statistics.median) for key, samples in rounds_of.items()}
        for size in sizes:
            register, ping = describe(best[size, "register"]), describe(best[size, "ping"])
            print(f"{backend:8} n={size:>6}  register {register}   ping {ping}")
        medians = {op: {size: statistics.median(best[size, op]) * 1e6 for size in sizes} for op in ("register", "ping")}
        ratios = {op: medians[op][sizes[-1]] / medians[op][sizes[0]] for op in medians}
        shown = "  ".join(f"{op} x{ratio:.2f}" for op, ratio in ratios.items())
        print(f"{backend:8} n={sizes[-1]} vs n={sizes[0]}: {shown}", flush=True)
        return {"sizes": sizes, "median_us": medians, "ratio": ratios}
    finally:
        for size, store in stores.items():
            await close_store(backend, size, store)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="memory,sqlite,postgres,redis")
    parser.add_argument("--sizes", default="10,100000")
    parser.add_argument("--ops", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="end with one JSON line: each backend's medians and ratios")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            found[backend] = await bench(backend, sizes, args.ops, args.rounds, Path(tmp))
    if args.json:
        print(json.dumps(found))


if __name__ == "__main__":
    asyncio.run(main())
