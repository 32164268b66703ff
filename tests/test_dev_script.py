"""``scripts/dev.py serve``: stopping the script stops the example app it started, and frees its port."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX signals")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def leftovers() -> Iterator[list[int]]:
    """Process ids to kill after the test if they are still running (a server that outlived its script)."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_serve_stops_the_server_and_frees_its_port(
    signum: signal.Signals, tmp_path: Path, leftovers: list[int]
) -> None:
    port = _free_port()
    log_path = tmp_path / "serve.log"
    env = {
        **os.environ,
        "DEV_SKIP_SYNC": "1",  # the checkout's .venv as it is: no bootstrap, no network
        "REGISTRY_STORE_URL": f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}",
    }
    with log_path.open("wb") as log:
        script = subprocess.Popen(
            [sys.executable, "scripts/dev.py", "serve", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    leftovers.append(script.pid)
    deadline = time.monotonic() + 60  # an app starts in seconds, many more on a busy machine
    while True:
        assert script.poll() is None, log_path.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"the example app did not start:\n{log_path.read_text()}"
        time.sleep(0.1)
    started = re.search(r"^\+ python -m example_app .*\(pid (\d+)\)$", log_path.read_text(), re.MULTILINE)
    assert started is not None, log_path.read_text()
    server = int(started.group(1))
    leftovers.append(server)

    script.send_signal(signum)  # to the script alone, as `kill` or a supervisor sends it
    # uvicorn shuts down, then ends by the signal it got (SIGTERM: 143, as a shell reports it) or with 0 (SIGINT).
    assert script.wait(timeout=20) in {0, 128 + signum}, log_path.read_text()
    assert not _alive(server)
    assert _port_is_free(port)  # the next `serve` can bind it
    log = log_path.read_text()
    assert "Application shutdown complete" in log  # a graceful shutdown: the lifespan closed the store
