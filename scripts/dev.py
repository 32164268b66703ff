"""Bootstrap this checkout's environment from uv.lock, then run the example app or every check.

Only a Python 3.11+ interpreter and the package index are needed: the script makes a small venv holding a pinned
uv, lets uv build `.venv` from the lock file (`--frozen`: the lock is never rewritten), then runs the command in it.

    python3 scripts/dev.py serve   # the example app on http://127.0.0.1:8000 (SQLite, no server needed)
    python3 scripts/dev.py test    # ruff, mypy, pytest (every backend) and the docs build, warnings as errors

Arguments after `serve` go to the app (`--port 8765`). `serve` passes SIGTERM and SIGINT on to the app and waits
for it to shut down, so stopping the script stops the server and frees its port. Arguments after `test` go to
pytest, which runs on two pytest-xdist workers unless they say otherwise: `-n 0` runs serially, `-p no:xdist`
without xdist. DEV_SKIP_SYNC=1 skips the bootstrap and runs in `.venv` as it is (no network; the tests use it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import venv
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".bootstrap"
ENV = ROOT / ".venv"
UV_VERSION = "0.13.9"
BIN = "Scripts" if os.name == "nt" else "bin"


def _uv() -> Path:
    uv = TOOLS / BIN / "uv"
    if not uv.exists():
        if sys.version_info < (3, 11):  # noqa: UP036 - the bootstrap runs on any python3 and must say why not
            sys.exit("litestar-registry needs Python 3.11 or newer")
        venv.EnvBuilder(with_pip=True, clear=True).create(TOOLS)
        subprocess.run(
            [
                str(TOOLS / BIN / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"uv=={UV_VERSION}",
            ],
            check=True,
        )
    return uv


def _sync() -> dict[str, str]:
    env = dict(os.environ, UV_PROJECT_ENVIRONMENT=str(ENV), UV_PYTHON_DOWNLOADS="never")
    env.pop("VIRTUAL_ENV", None)
    if env.get("DEV_SKIP_SYNC") != "1":
        subprocess.run(
            [str(_uv()), "sync", "--frozen", "--all-extras", "--quiet", "--python", sys.executable],
            check=True,
            cwd=ROOT,
            env=env,
        )
    env["PATH"] = f"{ENV / BIN}{os.pathsep}{env['PATH']}"
    return env


def _run(env: dict[str, str], *argv: str) -> None:
    print("+", " ".join(argv), flush=True)
    subprocess.run(argv, check=True, cwd=ROOT, env=env)


def _serve(env: dict[str, str], *argv: str) -> int:
    """Run the example app until it exits, passing on SIGTERM and SIGINT (and a hangup, as SIGTERM) sent here.

    The app runs in a session of its own, so a Ctrl-C in the terminal reaches it once, through this script: uvicorn
    takes a second SIGINT as "quit without shutting down", which would leave the store open. On Windows the console
    delivers Ctrl-C to the app itself; SIGTERM is passed on.
    """
    posix = os.name != "nt"
    passed_on: dict[int, int] = {signal.SIGTERM: signal.SIGTERM}
    if posix:
        passed_on |= {signal.SIGINT: signal.SIGINT, signal.SIGHUP: signal.SIGTERM}
    server: subprocess.Popen[bytes] | None = None
    pending: list[int] = []

    def pass_on(signum: int, _: FrameType | None) -> None:
        if server is None:
            pending.append(passed_on[signum])  # arrived before the app started: delivered right after
        elif server.poll() is None:
            server.send_signal(passed_on[signum])

    for received in passed_on:
        signal.signal(received, pass_on)
    if not posix:
        signal.signal(signal.SIGINT, lambda *_: None)
    command = ["python", "-m", "example_app", *argv]
    server = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=posix)
    print("+", " ".join(command), f"(pid {server.pid})", flush=True)
    for early in pending:
        server.send_signal(early)
    code = server.wait()
    return 128 - code if code < 0 else code  # ended by signal N: exit 128 + N, as a shell reports it


PYTEST_WORKERS = "2"
"""pytest-xdist workers: most of the suite waits on servers, processes and clocks, so two share two cores well."""


def _parallel(pytest_args: list[str]) -> list[str]:
    """The xdist options the test command adds, before the caller's: a later ``-n 0`` runs serially, and
    ``-p no:xdist`` (which would not know ``-n``) gets none."""
    if any(arg.endswith("no:xdist") for arg in pytest_args):
        return []
    return ["-n", PYTEST_WORKERS, "--dist", "loadgroup"]


def main() -> int:
    """Dispatch `serve` or `test`."""
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command not in {"serve", "test"}:
        print(__doc__)
        return 2
    env = _sync()
    if command == "serve":
        return _serve(env, *sys.argv[2:])
    try:
        _run(env, "ruff", "check", ".")
        _run(env, "ruff", "format", "--check", ".")
        _run(env, "mypy")
        _run(env, "pytest", *_parallel(sys.argv[2:]), *sys.argv[2:])
        _run(env, "sphinx-build", "-W", "--keep-going", "-q", "-b", "html", "docs", "docs/_build/html")
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
