"""The example registry and the announced app together: ``python -m example_app --with-announced``.

Each runs in a process (and session) of its own. SIGINT, SIGTERM or a hangup stops the announced app first, so that it
deregisters while the registry still answers, then the registry. When either exits by itself, the other is stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
POSIX = os.name != "nt"


def _stop(process: subprocess.Popen[bytes], name: str) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop within 15 s; killing it", file=sys.stderr, flush=True)
            process.kill()
            process.wait()


def run_both(host: str, port: int, announced_port: int) -> int:
    """Run both until a signal arrives or one of them exits; returns the exit status."""
    stopping: list[int] = []

    def stop(signum: int, _: FrameType | None) -> None:
        stopping.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if POSIX else [])):
        signal.signal(signum, stop)
    python = sys.executable
    env = {"REGISTRY_CLIENT_URL": f"http://{host}:{port}", **os.environ}
    registry = subprocess.Popen(
        [python, "-m", "example_app", "--host", host, "--port", str(port)], cwd=ROOT, start_new_session=POSIX
    )
    announced = subprocess.Popen(
        [python, "-m", "example_app.announced", "--host", host, "--port", str(announced_port)],
        cwd=ROOT,
        env=env,
        start_new_session=POSIX,
    )
    print(
        f"registry on http://{host}:{port} (pid {registry.pid}), announced app on http://{host}:{announced_port} "
        f"(pid {announced.pid}); Ctrl-C stops both",
        flush=True,
    )
    while not stopping and registry.poll() is None and announced.poll() is None:
        time.sleep(0.2)
    _stop(announced, "the announced app")
    _stop(registry, "the registry")
    if stopping:
        return 0
    return 1  # one of them exited by itself
