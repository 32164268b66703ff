"""The Redis store on Redis Cluster: three local ``redis-server --cluster-enabled yes`` nodes on loopback ports.

Every key one script touches carries the namespace's hash tag, so the whole store contract holds on a cluster as it
does standalone. The cluster is started here and stopped afterwards; without ``redis-server`` and ``redis-cli`` (or
when the nodes do not form a cluster in time) these tests skip and say why.
"""

from __future__ import annotations

import asyncio
import inspect
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from litestar_registry.core import states
from litestar_registry.core.models import Contact, ServiceQuery, ServiceStatus
from litestar_registry.store import ServiceStore, create_store
from litestar_registry.store.redis import RedisServiceStore
from tests.contract import test_event_log as event_log
from tests.contract import test_store_contract as contract
from tests.records import T0, first_version, make_record

pytestmark = [pytest.mark.redis, pytest.mark.xdist_group("redis-cluster")]  # one cluster a run, not one a worker

CASES: list[tuple[str, Callable[[ServiceStore], Awaitable[None]]]] = [
    (name, function)
    for module in (contract, event_log)
    for name, function in vars(module).items()
    if name.startswith("test_") and list(inspect.signature(function).parameters) == ["store"]
]


def _free_ports(count: int) -> list[int]:
    """Ports below 55536 that are free, each with its cluster bus port (the port plus 10000) free too."""
    ports: list[int] = []
    for port in range(17_300, 17_300 + 200):
        if all(_bindable(candidate) for candidate in (port, port + 10_000)):
            ports.append(port)
            if len(ports) == count:
                return ports
    pytest.skip("no free loopback ports for a local Redis Cluster")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A three-primary cluster on loopback, for this module only; its URL names one node and ``cluster=true``."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        pytest.skip("redis-server and redis-cli are needed to start a local Redis Cluster")
    ports = _free_ports(3)
    root = tmp_path_factory.mktemp("cluster")
    nodes: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            folder = root / str(port)
            folder.mkdir()
            nodes.append(
                subprocess.Popen(
                    [
                        *(server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes"),
                        *(
                            "--cluster-config-file",
                            "nodes.conf",
                            "--save",
                            "",
                            "--appendonly",
                            "no",
                            "--dir",
                            str(folder),
                        ),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        _wait(lambda: all(_answers(port) for port in ports), "the nodes did not start")
        created = subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{port}" for port in ports), "--cluster-yes"],
            capture_output=True,
            timeout=30,
            check=False,
        )
        if created.returncode != 0:
            pytest.skip(f"redis-cli --cluster create failed: {created.stdout.decode()[-300:]}")
        _wait(lambda: all(_cluster_ok(cli, port) for port in ports), "the cluster did not become ok")
        yield f"redis://127.0.0.1:{ports[0]}/0?cluster=true"
    finally:
        for node in nodes:
            node.terminate()
        for node in nodes:
            try:
                node.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node.kill()


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def _cluster_ok(cli: str, port: int) -> bool:
    info = subprocess.run([cli, "-p", str(port), "cluster", "info"], capture_output=True, timeout=5, check=False)
    return b"cluster_state:ok" in info.stdout


def _wait(ready: Callable[[], bool], failure: str) -> None:
    deadline = time.monotonic() + 20
    while not ready():
        if time.monotonic() > deadline:
            pytest.skip(f"local Redis Cluster: {failure} within 20 s")
        time.sleep(0.1)


@pytest.fixture
async def cluster_store(cluster_url: str) -> AsyncIterator[RedisServiceStore]:
    store = create_store(cluster_url, namespace="registry-cluster")
    assert isinstance(store, RedisServiceStore)
    async with store:
        await store._clear_for_tests()
        yield store
        await store._clear_for_tests()


@pytest.mark.parametrize("case", [function for _, function in CASES], ids=[name for name, _ in CASES])
async def test_the_store_contract_holds_on_a_cluster(
    case: Callable[[ServiceStore], Awaitable[None]], cluster_store: RedisServiceStore
) -> None:
    await case(cluster_store)


async def test_a_namespace_lives_in_one_slot_and_scripts_reload_on_every_primary(
    cluster_store: RedisServiceStore,
) -> None:
    for i in range(20):
        record = make_record(f"svc-{i:02d}", tags=("even",) if i % 2 == 0 else ("odd",))
        await cluster_store.create(record, first_version(record))
    client = cast("Any", cluster_store.client)
    keys = [key async for key in client.scan_iter(match="{registry-cluster}:*")]
    assert len({client.keyslot(key) for key in keys}) == 1
    assert len(keys) > 40  # hashes, histories and every index: all in that slot
    page = await cluster_store.find(ServiceQuery(tag="odd", limit=5))
    assert [record.slug for record in page.items] == [f"svc-{i:02d}" for i in range(1, 10, 2)]
    for node in client.get_nodes():  # as after a failover to a fresh replica
        async with aioredis.Redis(host=node.host, port=node.port) as direct:
            await direct.script_flush()
    contact = Contact(at=T0 + timedelta(seconds=1), status=ServiceStatus.ACTIVE, from_statuses=states.LIVE)
    assert await cluster_store.touch("svc-01", contact) is not None
    changed = await cluster_store.sweep_due(T0 + timedelta(seconds=30.5), states.advance, limit=50)
    assert len(changed) == 19  # all but the one just touched


async def test_a_call_from_another_event_loop_reaches_the_cluster(cluster_store: RedisServiceStore) -> None:
    record = make_record("across")
    await cluster_store.create(record, first_version(record))
    found = await asyncio.to_thread(asyncio.run, cluster_store.get("across"))
    assert found is not None
    assert found.slug == "across"


def test_a_cluster_url_is_accepted_by_the_store_factory(tmp_path: Path) -> None:
    assert isinstance(create_store("redis://127.0.0.1:7000/0?cluster=true"), RedisServiceStore)
