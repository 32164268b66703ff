"""A real example-app server on 127.0.0.1, in its own process, for the few tests that need real time and sockets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60
"""How long an app may take to start: importing Litestar takes seconds, many more on a busy machine (xdist workers
and their app processes share the cores)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A running example app and the store it writes to."""

    def __init__(self, base_url: str, database: Path, process: subprocess.Popen[bytes] | None = None) -> None:
        self.base_url = base_url
        self.database = database
        self.process = process


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start the example app with extra ``REGISTRY_*`` settings; stopped at the end of the test."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(**settings: str) -> Server:
        port = _free_port()
        database = tmp_path / f"registry-{port}.db"
        env = {
            **os.environ,
            "REGISTRY_STORE_URL": f"sqlite+aiosqlite:///{database}",
            **{f"REGISTRY_{key.upper()}": value for key, value in settings.items()},
        }
        log = (tmp_path / f"server-{port}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "example_app", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log
        )
        log.close()
        processes.append(process)
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(
                    f"example app exited with {process.returncode}: {(tmp_path / f'server-{port}.log').read_text()}"
                )
            try:
                if httpx.get(f"{base_url}/healthz", timeout=0.5).status_code == 200:
                    return Server(base_url, database, process)
            except httpx.TransportError:
                time.sleep(0.1)
        pytest.fail(f"example app did not start within {STARTUP_SECONDS} s")

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung server is killed, not waited on forever
            process.kill()
            process.wait()
