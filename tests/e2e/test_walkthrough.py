"""docs/example.md, run as written: every command against the example app, its answers compared with the doc's.

The walkthrough runs twice on one SQLite file, with the restarts the doc asks for (``scripts/dev.py serve``, then
``REGISTRY_DEV_MODE=true`` for the approval section), so what a first run leaves behind must not break a second.
Each ``sh`` block runs in bash after the doc's setup block; the ``json`` or ``text`` block after it is what it must
print. The doc trims answers to the interesting fields, so an object matches when it has every field the doc shows,
with the same value; ids and timestamps differ from run to run, but the time from a contact to the deadlines it
sets must be the doc's, and long enough for a person typing the commands.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ROOT, STARTUP_SECONDS, _free_port

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.name == "nt", reason="bash and POSIX signals")]

DOC = ROOT / "docs" / "example.md"
DOC_ORIGIN = "http://127.0.0.1:8000"
VOLATILE = {"request_id", "trace_id"}
"""Fields whose values differ on every run; timestamps (``*_at``) are compared by the intervals between them."""
CONTACTS = ("last_heartbeat_at", "acknowledged_at")
DEADLINES = ("next_heartbeat_due_at", "expires_at")
HUMAN_PACE = timedelta(minutes=5)
"""The shortest time from a contact to a deadline that the walkthrough may show: enough to read and type."""


@dataclass
class Step:
    """A command of the walkthrough, and what the doc says it prints (``None`` when it shows nothing)."""

    line: int
    command: str
    kind: str | None = None
    expected: str | None = None


def walkthrough() -> tuple[str, list[Step | str]]:
    """The setup block, then the doc's steps in order; a ``shell`` block (a server start) appears as its text."""
    blocks = [
        (text[: match.start()].count("\n") + 1, match.group(1), match.group(2))
        for text in [DOC.read_text()]
        for match in re.finditer(r"^```(\w+)\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    ]
    setup = next(code for _, kind, code in blocks if kind == "sh" and code.startswith("BASE="))
    steps: list[Step | str] = []
    for line, kind, code in blocks:
        if kind == "shell":
            steps.append(code)
        elif kind == "sh" and code != setup:
            steps.append(Step(line, code))
        elif kind in {"json", "text"} and steps and isinstance(steps[-1], Step) and steps[-1].kind is None:
            steps[-1].kind, steps[-1].expected = kind, code
    return setup, steps


class Example:
    """``scripts/dev.py serve`` on one port and one SQLite file, restarted as the doc says."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = _free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.database = tmp_path / "registry.db"
        self.log = tmp_path / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, shell_line: str) -> None:
        self.stop()
        env = {name: value for name, value in os.environ.items() if not name.startswith("REGISTRY_")}
        env.update(DEV_SKIP_SYNC="1", REGISTRY_STORE_URL=f"sqlite+aiosqlite:///{self.database}")
        env.update(re.findall(r"(REGISTRY_\w+)=(\S+)", shell_line))  # REGISTRY_DEV_MODE=true python3 scripts/...
        command = [sys.executable, "scripts/dev.py", "serve", "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.origin}/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        pytest.fail(f"the example app did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # dev.py passes it on and waits for the app
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:  # pragma: no cover - a hung server is killed, not waited on forever
                self.process.kill()
                self.process.wait()


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Example]:
    server = Example(tmp_path)
    yield server
    server.stop()


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _intervals(shown: dict[str, Any]) -> dict[tuple[str, str], timedelta]:
    """From each contact time in ``shown`` to each deadline in it."""
    return {
        (start, end): _instant(shown[end]) - _instant(shown[start])
        for start in CONTACTS
        for end in DEADLINES
        if isinstance(shown.get(start), str) and isinstance(shown.get(end), str)
    }


def _matches(expected: Any, actual: Any, where: str) -> list[str]:
    """How ``actual`` differs from the doc's trimmed ``expected`` (empty when it matches)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {actual!r}"]
        problems = [f"{where}.{key}: missing" for key in expected if key not in actual]
        for key, value in expected.items():
            if key not in actual or key in VOLATILE:
                continue
            if key.endswith("_at") and isinstance(value, str):
                if not isinstance(actual[key], str):
                    problems.append(f"{where}.{key}: expected a timestamp, got {actual[key]!r}")
                continue
            problems += _matches(value, actual[key], f"{where}.{key}")
        documented, measured = _intervals(expected), _intervals(actual)
        for pair, interval in documented.items():
            if pair not in measured or abs(measured[pair] - interval) > timedelta(milliseconds=1):
                problems.append(f"{where}: {pair[1]} - {pair[0]} is {measured.get(pair)}, the doc shows {interval}")
            elif interval < HUMAN_PACE:
                problems.append(f"{where}: {pair[1]} only {interval} after {pair[0]}: too short to type along")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected {len(expected)} items, got {actual!r}"]
        return [problem for i, item in enumerate(expected) for problem in _matches(item, actual[i], f"{where}[{i}]")]
    return [] if expected == actual else [f"{where}: expected {expected!r}, got {actual!r}"]


def run(step: Step, setup: str, origin: str) -> list[str]:
    """Run ``step`` as the reader would, and say how its output differs from the doc's."""
    script = (setup + step.command).replace(DOC_ORIGIN, origin)
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False)
    where = f"docs/example.md:{step.line}"
    if done.returncode != 0:
        return [f"{where}: exit {done.returncode}: {done.stderr}"]
    lines = done.stdout.splitlines()
    codes = [line for line in lines if re.fullmatch(r"\d{3}", line)]  # the loops' `-w "%{http_code}\n"`
    problems = [f"{where}: answered {code}" for code in codes if not code.startswith("2")]
    body = "\n".join(line for line in lines if line not in codes)
    if step.kind == "json":
        try:
            problems += _matches(json.loads(step.expected or ""), json.loads(body), where)
        except json.JSONDecodeError:
            problems.append(f"{where}: not JSON: {body!r}")
    elif step.kind == "text":
        expected_first = (step.expected or "").splitlines()[0]
        if not body.startswith(expected_first):
            problems.append(f"{where}: expected {expected_first!r}, got {body[:200]!r}")
    elif body.strip():
        problems.append(f"{where}: the doc shows no output, got {body[:200]!r}")
    return problems


def test_the_walkthrough_prints_what_the_doc_shows_on_a_first_and_a_second_run(example: Example) -> None:
    setup, steps = walkthrough()
    assert sum(isinstance(step, Step) for step in steps) >= 15
    for attempt in ("first run", "second run"):
        problems: list[str] = []
        for step in steps:
            if isinstance(step, str):
                example.start(step)
            else:
                problems += run(step, setup, example.origin)
        assert not problems, f"{attempt}:\n" + "\n".join(problems)
