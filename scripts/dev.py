"""Bootstrap this checkout's environment from uv.lock, then run the example app or every check.

Only a Python 3.11+ interpreter and the package index are needed: the script makes a small venv holding a pinned
uv, lets uv build `.venv` from the lock file (`--frozen`: the lock is never rewritten), then runs the command in it.

    python3 scripts/dev.py serve   # the example app on http://127.0.0.1:8000 (SQLite, no server needed)
    python3 scripts/dev.py test    # ruff, mypy, pytest (every backend) and the docs build, warnings as errors
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

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


def main() -> int:
    """Dispatch `serve` or `test`."""
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command not in {"serve", "test"}:
        print(__doc__)
        return 2
    env = _sync()
    try:
        if command == "serve":
            _run(env, "python", "-m", "example_app", *sys.argv[2:])
        else:
            _run(env, "ruff", "check", ".")
            _run(env, "ruff", "format", "--check", ".")
            _run(env, "mypy")
            _run(env, "pytest", *sys.argv[2:])
            _run(env, "sphinx-build", "-W", "--keep-going", "-q", "-b", "html", "docs", "docs/_build/html")
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
