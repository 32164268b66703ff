"""The README's one command for both example apps, run as written: ``scripts/dev.py serve --with-announced``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.client.conftest import ROOT, free_ports, poll

pytestmark = pytest.mark.e2e


def test_serve_with_announced_runs_both_and_ctrl_c_deregisters_before_the_registry_stops(tmp_path: Path) -> None:
    port, announced_port = free_ports(2)
    env = {key: value for key, value in os.environ.items() if not key.startswith("REGISTRY_")}
    env |= {"DEV_SKIP_SYNC": "1", "REGISTRY_STORE_URL": "memory://", "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "scripts/dev.py", "serve", "--with-announced", "--port", str(port)]
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [*argv, "--announced-port", str(announced_port)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:

        def announced() -> bool:
            """the announced app is registered with the example registry (its demo key)"""
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/registry/services/announced-demo",
                    headers={"Authorization": "Bearer demo-service-key"},
                    timeout=2,
                )
            except httpx.TransportError:
                return False
            return answer.status_code == 200 and answer.json()["data"]["status"] == "active"

        poll(announced, within=60, every=0.2)
        demo.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert demo.wait(timeout=30) == 0
    finally:
        if demo.poll() is None:  # only when an assertion above failed: SIGTERM is passed on to both apps
            demo.terminate()
            try:
                demo.wait(timeout=30)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()
        print(log.read_text())  # shown when the test fails
    # The registry's access log, not the app's own last lines: uvicorn ends by re-raising SIGTERM, so log records still
    # queued by Litestar's logging may never be written.
    output = log.read_text()
    deleted = output.index('"DELETE /api/v1/registry/register HTTP/1.1" 204')
    assert "Shutting down" in output[deleted:]  # the registry stopped only after it had answered the deregistration
