"""How much memory does the memory store hold per service?

Run: ``.venv/bin/python bench/bench_memory.py [--count 100000]``

Registers ``--count`` services through the Registry into a fresh memory store (the list benchmark's services:
``seed_store.registration``, with a description, two tags, two capabilities, URLs and metadata) and reports the Python
heap that grew meanwhile, measured by ``tracemalloc``, divided by the count: records, version history, slug list,
due heap and filter indexes included. Prints one JSON line. The goal is at most 2 KB per service.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from seed_store import BENCH, registration

from litestar_registry.config import RegistryConfig
from litestar_registry.core.registry import Registry
from litestar_registry.plugin import registry_policy
from litestar_registry.store import MemoryServiceStore


async def measure(count: int) -> dict[str, object]:
    config = RegistryConfig(auto_approve_accounts=frozenset({"bench"}), default_ttl_seconds=3600.0)
    store = MemoryServiceStore()
    registry = Registry(store, registry_policy(config))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(1, count + 1):  # what the record keeps of its registration's strings counts, the rest is freed
        await registry.register(registration(i), BENCH)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    per_service = held / count
    return {"count": count, "bytes_per_service": round(per_service), "kb": round(per_service / 1024, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.count))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
