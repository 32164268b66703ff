"""Fill a registry store with services for the list measurements, through the product's own store and core.

    .venv/bin/python bench/seed_store.py --url URL --count N

Services ``list-000001`` .. are registered by account ``bench`` with a TTL of an hour, in bulk (multi-row INSERTs on
SQL, pipelined scripts on Redis: ``bench_register.fill``). Every service has the tag ``inventory`` and capability
``stock``; service ``i`` also has the tag ``group-{i % 10}`` and the capability ``cap-{i % 10}``, so that
``tag=group-3`` or ``capability=cap-3`` matches a tenth of them and ``tag=nomatch`` none. On PostgreSQL the seed
ends with ``VACUUM ANALYZE`` of the registry's tables, as an operator would after a bulk load: otherwise autovacuum
and autoanalyze come round during the measurement, and until they do the planner has no statistics for the new rows.
The seed is not measured; it prints one JSON line with its count and duration.

    .venv/bin/python bench/seed_store.py --url URL --sweep 3

times ``--sweep`` calls of the store's ``sweep_due`` with 100 services due among those already there: before each
call, 100 services ``due-K-NNN`` register with a TTL of one second, the call runs as of five seconds later (the others
are not due for an hour), and the 100 are deregistered afterwards. It prints the calls' durations as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_register import fill

from litestar_registry.config import RegistryConfig
from litestar_registry.core import states
from litestar_registry.core.auth import Principal, Role
from litestar_registry.core.models import Registration
from litestar_registry.core.registry import Registry
from litestar_registry.plugin import registry_policy
from litestar_registry.store import create_store
from litestar_registry.store.sqlalchemy import SQLAlchemyServiceStore

BENCH = Principal(account="bench", role=Role.SERVICE)
ADMIN = Principal(account="bench-admin", role=Role.ADMIN)
ANALYZED = ("registry_services", "registry_service_labels", "registry_service_versions")
"""The tables a bulk seed fills, vacuumed and analyzed after it on PostgreSQL."""


def registration(i: int) -> Registration:
    slug = f"list-{i:06d}"
    return Registration(
        slug=slug,
        name=f"Inventory service {i}",
        version="2.14.3",
        description="Keeps stock levels for the warehouse domain; registered by the benchmark.",
        base_url=f"http://{slug}.registry.invalid:8080",
        health_url=f"http://{slug}.registry.invalid:8080/healthz",
        tags=("inventory", f"group-{i % 10}"),
        capabilities=("stock", f"cap-{i % 10}"),
        metadata={"region": "eu-west", "zone": "b", "team": "logistics"},
        ttl_seconds=3600.0,
    )


async def seed(url: str, count: int) -> dict[str, object]:
    """Fill the store in bulk (``bench_register.fill``): 100,000 services in seconds on every store."""
    config = RegistryConfig(auto_approve_accounts=frozenset({"bench"}), default_ttl_seconds=3600.0)
    store = create_store(url, create_schema=True)
    await store.open()
    try:
        registry = Registry(store, registry_policy(config))
        seconds = await fill(registry, count, lambda i: registration(i + 1))
        if isinstance(store, SQLAlchemyServiceStore) and store.engine.dialect.name == "postgresql":
            async with store.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.exec_driver_sql(f"VACUUM ANALYZE {', '.join(ANALYZED)}")
    finally:
        await store.close()
    return {"url": url.split("://")[0], "count": count, "seconds": round(seconds, 1), "per_s": round(count / seconds)}


async def sweep(url: str, calls: int, due: int) -> dict[str, object]:
    config = RegistryConfig(auto_approve_accounts=frozenset({"bench"}), default_ttl_seconds=3600.0)
    store = create_store(url, create_schema=True)
    await store.open()
    timings = []
    try:
        registry = Registry(store, registry_policy(config))
        for k in range(calls):
            slugs = [f"due-{k}-{i:03d}" for i in range(due)]
            short = [Registration(slug=s, name=s, version="1.0.0", ttl_seconds=1.0) for s in slugs]
            await asyncio.gather(*(registry.register(r, BENCH) for r in short))
            at = datetime.now(UTC) + timedelta(seconds=5)
            began = time.perf_counter()
            changed = await store.sweep_due(at, states.advance, limit=due)
            timings.append(round((time.perf_counter() - began) * 1000, 2))
            if len(changed) != due:
                raise SystemExit(f"sweep: {len(changed)} changed, {due} expected")
            for slug in slugs:
                await registry.deregister(slug, ADMIN, force=True)
    finally:
        await store.close()
    return {"url": url.split("://")[0], "due": due, "ms": timings, "median_ms": statistics.median(timings)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--sweep", type=int, default=0, help="time this many sweeps of 100 due instead of seeding")
    args = parser.parse_args()
    if not any(host in args.url for host in ("127.0.0.1", "localhost", "sqlite")):
        sys.exit("seed_store: loopback stores only")
    work = sweep(args.url, args.sweep, 100) if args.sweep else seed(args.url, args.count)
    print(json.dumps(asyncio.run(work)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
