"""Python CPU per request of the hot routes, in process: the app called as an ASGI callable, no server, no socket.

The HTTP benchmark (``run.py``) measures throughput under a server; this script isolates what our code and Litestar
cost per request, as CPU time (``time.process_time``), so it is usable on a busy machine and under a profiler:

    .venv/bin/python bench/asgi_cost.py                      # memory store: framework + registry, no I/O
    .venv/bin/python bench/asgi_cost.py --store redis://127.0.0.1:6379/14
    .venv/bin/python bench/asgi_cost.py --profile ping       # cProfile of one route, top 25 by own time
    .venv/bin/python bench/asgi_cost.py --breakdown          # each route's CPU by layer: Litestar, ours, driver...

It compares with the bare handlers of ``baseline_app.py`` (``noop`` always; the Redis ``ping`` when the store is
Redis, the SQL ``sqlping`` when it is SQL), called the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BODIES = HERE / "bodies"

Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[dict[str, Any], Any, Send], Awaitable[None]]


def _scope(method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    raw, _, query = path.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": raw,
        "raw_path": raw.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _call(app: App, method: str, path: str, body: bytes, headers: dict[str, str]) -> int:
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(method, path, headers), receive, send)
    return status


def _key() -> str:
    from run import KEY

    return KEY


class Route:
    def __init__(self, name: str, method: str, path: str, body: str | None = None, keyed: bool = False) -> None:
        self.name, self.method, self.path, self.keyed = name, method, path, keyed
        self.body = (BODIES / body).read_text() if body else ""

    def request(self, i: int) -> tuple[str, str, bytes, dict[str, str]]:
        slug = f"svc-{i:05d}"
        headers = {"content-type": "application/json"} if self.body else {}
        if self.keyed:
            headers["authorization"] = f"Bearer {_key()}"
        return self.method, self.path.replace("{id}", slug), self.body.replace("{id}", slug).encode(), headers


PRODUCT = [
    Route("ping", "PUT", "/v2/services/{id}/$ping"),
    Route("heartbeat", "POST", "/api/v1/registry/heartbeat", "heartbeat.json", keyed=True),
    Route("get", "GET", "/v2/services/{id}"),
    Route("register", "POST", "/v2/services/$register", "ttl_register.json"),
]
BASELINE = [
    Route("noop", "GET", "/noop"),
    Route("ping", "PUT", "/ping/{id}"),
    Route("register", "POST", "/register", "baseline_register.json"),
    Route("sqlping", "PUT", "/sqlping/{id}"),
]


async def _measure(app: App, route: Route, count: int, space: int) -> float:
    """Median over five runs of CPU microseconds per request."""
    runs = []
    for _ in range(5):
        start = time.process_time()
        for i in range(count):
            status = await _call(app, *route.request(1 + i % space))
            if status >= 400:
                raise SystemExit(f"{route.name}: HTTP {status}")
        runs.append((time.process_time() - start) / count * 1e6)
    return sorted(runs)[2]


LAYERS = (
    ("litestar_registry/", "registry (our code)"),
    ("/litestar/", "Litestar"),
    ("/redis/", "redis-py"),
    ("/sqlalchemy/", "SQLAlchemy"),
    ("/advanced_alchemy/", "SQLAlchemy"),
    ("/aiosqlite/", "aiosqlite"),
    ("/asyncpg/", "asyncpg"),
    ("/asyncio/", "asyncio"),
    ("/selectors.py", "asyncio"),
    ("/anyio/", "anyio"),
    ("/msgspec/", "msgspec"),
    ("bench/", "harness"),
)


def _layer(filename: str, function: str) -> str:
    if filename == "~":  # a builtin: sockets and polling are the kernel's share
        if any(word in function for word in ("socket", "epoll", "recv", "send", "SimpleQueue")):
            return "syscalls (socket, poll, thread queue)"
        return "msgspec" if "msgspec" in function else "builtins"
    return next((layer for fragment, layer in LAYERS if fragment in filename), "other Python")


def _breakdown(route: str, stats: pstats.Stats) -> None:
    """Print the share of the route's CPU spent in each layer (own time of its functions, as cProfile sees it)."""
    shares: dict[str, float] = {}
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _, function), (_, _, own, _, _) in table.items():
        layer = _layer(filename, function)
        shares[layer] = shares.get(layer, 0.0) + own
    total = sum(shares.values())
    parts = ", ".join(f"{name} {share / total:.0%}" for name, share in sorted(shares.items(), key=lambda x: -x[1]))
    print(f"{route:<10} {parts}")


async def _lifespan(app: App) -> Callable[[], Awaitable[None]]:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    done: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, queue.get, done.put))
    await queue.put({"type": "lifespan.startup"})
    started = await done.get()
    if started["type"] != "lifespan.startup.complete":
        raise SystemExit(f"startup failed: {started}")

    async def stop() -> None:
        await queue.put({"type": "lifespan.shutdown"})
        await done.get()
        await task

    return stop


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default="memory://", help="REGISTRY_STORE of the product (default memory://)")
    parser.add_argument("--count", type=int, default=2000, help="requests per run (five runs, median)")
    parser.add_argument("--space", type=int, default=1000, help="services registered before measuring")
    parser.add_argument("--profile", metavar="ROUTE", help="profile one product route instead of measuring")
    parser.add_argument("--sort", default="tottime", help="--profile: pstats sort key (tottime, cumtime, ...)")
    parser.add_argument("--top", type=int, default=25, help="--profile: how many functions to print")
    parser.add_argument("--routes", help="comma-separated product routes to measure (default: all)")
    parser.add_argument("--breakdown", action="store_true", help="share of each layer in every product route's CPU")
    args = parser.parse_args()

    sys.path.insert(0, str(HERE))
    from run import product_env

    os.environ.update(product_env(args.store), REGISTRY_SWEEPER_ENABLED="false")
    sys.path.insert(0, str(HERE.parent))
    from example_app.app import create_app

    chosen = [r for r in PRODUCT if not args.routes or r.name in args.routes.split(",")]
    product: Any = create_app()
    stop = await _lifespan(product)
    register = PRODUCT[-1]
    for i in range(1, args.space + 1):
        await _call(product, *register.request(i))
    if args.profile or args.breakdown:
        for route in chosen if args.breakdown else [r for r in PRODUCT if r.name == args.profile]:
            profiler = cProfile.Profile(time.process_time)  # CPU, not wall: waiting on Redis is free
            profiler.enable()
            await _measure(product, route, args.count, args.space)
            profiler.disable()
            if args.breakdown:
                _breakdown(route.name, pstats.Stats(profiler))
            else:
                stats = pstats.Stats(profiler).sort_stats(args.sort)
                stats.print_stats(args.top)
        await stop()
        return
    results = {f"product {r.name}": await _measure(product, r, args.count, args.space) for r in chosen}
    await stop()

    redis = args.store.startswith("redis")
    if redis:
        os.environ["BENCH_REDIS_URL"] = args.store
    elif not args.store.startswith("memory"):
        # The bare UPDATE handler's table goes into a database of its own (a SQLite file beside the store's).
        sql = args.store.replace(".db", "-baseline.db") if "sqlite" in args.store else args.store
        os.environ["BENCH_SQL_URL"] = sql
    os.environ["BENCH_ID_SPACE"] = str(args.space)
    import baseline_app

    baseline: Any = baseline_app.create_app() if hasattr(baseline_app, "create_app") else baseline_app.app
    stop = await _lifespan(baseline)
    for route in BASELINE:
        sql = "BENCH_SQL_URL" in os.environ
        if (route.name in ("ping", "register") and not redis) or (route.name == "sqlping" and not sql):
            continue
        results[f"bare {route.name}"] = await _measure(baseline, route, args.count, args.space)
    await stop()
    for name, micros in results.items():
        print(f"{name:<20} {micros:8.1f} µs CPU/request")


if __name__ == "__main__":
    asyncio.run(main())
