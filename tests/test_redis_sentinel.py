"""The Redis store behind Sentinel: a local ``redis-server`` and one ``redis-server --sentinel`` on loopback ports.

A client that Sentinel hands out (``Sentinel(...).master_for(name)``) is passed to the store, which runs the whole
store contract through it. The servers are started here and stopped afterwards; without ``redis-server`` (or when
Sentinel does not report the master in time) these tests skip and say why.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from redis.asyncio.sentinel import Sentinel

from litestar_registry.core.ports import ServiceStore
from litestar_registry.store.redis import RedisServiceStore
from tests.test_redis_cluster import CASES

pytestmark = [pytest.mark.redis, pytest.mark.xdist_group("redis-sentinel")]  # one Sentinel a run, not one a worker


def _free_port(start: int) -> int:
    for port in range(start, start + 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free loopback port for a local Sentinel")


def _wait(ready: Callable[[], bool], failure: str) -> None:
    deadline = time.monotonic() + 20
    while not ready():
        if time.monotonic() > deadline:
            pytest.skip(f"local Sentinel: {failure} within 20 s")
        time.sleep(0.1)


def _master_known(cli: str, port: int) -> bool:
    reply = subprocess.run(
        [cli, "-p", str(port), "sentinel", "get-master-addr-by-name", "registry"],
        capture_output=True,
        timeout=5,
        check=False,
    )
    return b"127.0.0.1" in reply.stdout


@pytest.fixture(scope="module")
def sentinel_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A master and a Sentinel watching it (quorum 1), for this module only; yields the Sentinel's port."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        pytest.skip("redis-server and redis-cli are needed to start a local Sentinel")
    root = tmp_path_factory.mktemp("sentinel")
    master, sentinel = _free_port(17_600), _free_port(17_700)
    config = root / "sentinel.conf"
    config.write_text(
        f"port {sentinel}\nbind 127.0.0.1\nsentinel monitor registry 127.0.0.1 {master} 1\n", encoding="utf-8"
    )
    processes: list[subprocess.Popen[bytes]] = []
    try:
        options = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(root))
        processes.append(subprocess.Popen([server, "--port", str(master), *options], stdout=subprocess.DEVNULL))
        processes.append(subprocess.Popen([server, str(config), "--sentinel"], stdout=subprocess.DEVNULL))
        _wait(lambda: _master_known(cli, sentinel), "the master is not known")
        yield sentinel
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
async def sentinel_store(sentinel_port: int) -> AsyncIterator[RedisServiceStore]:
    sentinel = Sentinel([("127.0.0.1", sentinel_port)])
    client = sentinel.master_for("registry")
    try:
        async with RedisServiceStore("redis://sentinel-managed", client=client) as store:
            await store._clear_for_tests()
            yield store
            await store._clear_for_tests()
    finally:
        await client.aclose()
        for watcher in sentinel.sentinels:  # the Sentinel's own connections, which asked where the master is
            await watcher.aclose()


@pytest.mark.parametrize("case", [function for _, function in CASES], ids=[name for name, _ in CASES])
async def test_the_store_contract_holds_behind_sentinel(
    case: Callable[[ServiceStore], Awaitable[None]], sentinel_store: RedisServiceStore
) -> None:
    await case(sentinel_store)
