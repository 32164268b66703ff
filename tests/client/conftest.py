"""Real processes on 127.0.0.1 and free ports: the example registry, the announced example app, a fault proxy."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]

SERVICE_KEY = "announcer-key-0123456789"
PENDING_KEY = "unknown-account-key-0123"
ADMIN_KEY = "announcer-admin-key-0123"
TTL_KEY = "announcer-ttl-key-012345"
REGISTRY_SETTINGS = {
    "REGISTRY_STORE_URL": "memory://",
    "REGISTRY_SERVICE_KEYS": f"announcer={SERVICE_KEY},newcomer={PENDING_KEY}",
    "REGISTRY_ADMIN_KEYS": f"ops={ADMIN_KEY}",
    "REGISTRY_AUTO_APPROVE_ACCOUNTS": "announcer",
    "REGISTRY_TTL_REGISTRATION_KEY": TTL_KEY,
    "REGISTRY_SWEEP_INTERVAL_SECONDS": "0.2",
}
"""Explicit keys, so that the tests do not depend on the example's demo keys."""
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


_HANDED_OUT: set[int] = set()
"""Ports given to processes of this session: a process still importing has not bound its port yet, so the kernel may
offer that port again."""


def free_port() -> int:
    while True:
        (port,) = free_ports(1)
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (held open together while picked, so no two are the same)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class Process:
    """One server process on 127.0.0.1: started, probed until it answers, stopped gracefully or killed."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, logs: Path, ready: str) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.logs = logs
        self.ready = ready
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.logs / f"{self.name}-{self.port}-{self.starts}.log"

    def spawn(self) -> Process:
        """Start the process without waiting for it (processes start in parallel: each import takes seconds)."""
        self.starts += 1
        with self.log_path.open("wb") as log:
            self.popen = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self

    def start(self, within: float = 120.0) -> float:
        """Start and wait until it serves: see :meth:`wait_ready`."""
        return self.spawn().wait_ready(within)

    def wait_ready(self, within: float = 120.0) -> float:
        """Wait until ``ready`` answers 200; returns the monotonic time it first did."""
        assert self.popen is not None
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.popen.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.base_url}{self.ready}", timeout=1).status_code == 200:
                    return time.monotonic()
            except httpx.TransportError:
                time.sleep(0.05)
        pytest.fail(f"{self.name} did not answer within {within} s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, within: float = 20.0) -> bool:
        """SIGTERM (a graceful shutdown), and wait for the exit; whether it exited as uvicorn does after one.

        uvicorn shuts down gracefully, then exits by the signal it caught: ``-SIGTERM`` (0 in older versions).
        """
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=within) in (0, -signal.SIGTERM)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            pytest.fail(f"{self.name} did not stop within {within} s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown at all."""
        assert self.popen is not None
        self.popen.kill()
        self.popen.wait()

    def cleanup(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a hung server is killed, not waited on forever
                self.popen.kill()
                self.popen.wait()


class Launcher:
    """Starts the processes of one test and stops every one of them at its end."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.processes: list[Process] = []

    def _process(self, name: str, module: str, env: dict[str, str], ready: str, *args: str) -> Process:
        port = free_port()
        argv = [sys.executable, "-m", module, "--port", str(port), *args]
        clean = {key: value for key, value in os.environ.items() if not key.startswith("REGISTRY_")}
        process = Process(name, argv, {**clean, "PYTHONUNBUFFERED": "1", **env}, port, self.logs, ready)
        self.processes.append(process)
        return process

    def registry(self, *, wait: bool = True, **settings: str) -> Process:
        """The example registry in memory (``REGISTRY_<NAME>`` for each setting), started."""
        env = {**REGISTRY_SETTINGS, **{f"REGISTRY_{key.upper()}": value for key, value in settings.items()}}
        process = self._process("registry", "example_app", env, "/healthz").spawn()
        if wait:
            process.wait_ready()
        return process

    def announced(self, registry_url: str, *, wait: bool = True, **settings: str) -> Process:
        """The announced example app (``REGISTRY_CLIENT_<NAME>`` for each setting), started."""
        env = {
            "REGISTRY_CLIENT_URL": registry_url,
            "REGISTRY_CLIENT_TOKEN": SERVICE_KEY,
            "REGISTRY_CLIENT_SERVICE_KEY": TTL_KEY,
            **{f"REGISTRY_CLIENT_{key.upper()}": value for key, value in settings.items()},
        }
        process = self._process("announced", "example_app.announced", env, "/healthz").spawn()
        if wait:
            process.wait_ready()
        return process

    def proxy(self, target: str, *, wait: bool = True) -> Process:
        """The fault proxy in front of ``target``, started."""
        process = self._process("proxy", "tests.client.fault_proxy", {}, "/__proxy/log", "--target", target).spawn()
        if wait:
            process.wait_ready()
        return process

    def cleanup(self) -> None:
        for process in reversed(self.processes):
            process.cleanup()


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path)
    yield launcher
    launcher.cleanup()


@pytest.fixture(scope="session")
def spawned_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    """The shared registry, spawned but maybe not serving yet (so that other processes can start beside it)."""
    launcher = Launcher(tmp_path_factory.mktemp("registry"))
    try:
        yield launcher.registry(wait=False, keep_deregistered="true")
    finally:
        launcher.cleanup()


@pytest.fixture(scope="session")
def shared_registry(spawned_registry: Process) -> Process:
    """One registry for the client tests (each uses its own slugs); it keeps deregistered records, so that a
    deregistration shows as such instead of as a missing record. A test may restart it (its store starts empty)."""
    spawned_registry.wait_ready()
    return spawned_registry


def poll(check: Callable[[], Any], *, within: float, every: float = 0.05) -> Any:
    """``check()`` until it returns something truthy; fails after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within} s: {check.__doc__ or check}")
        time.sleep(every)
