"""Run docs/provisioning.md's curl walkthrough as written, in one bash session, and compare with what the doc shows.

The doc's ``sh`` blocks run in order in one shell (variables set by one, such as ``$WORKFLOW``, serve the next); the
``json`` (or ``text``) block after one is what it must print. The doc trims answers to the interesting fields, so an
object matches when it has every field the doc shows with the same value. Ids, tokens and timestamps differ from run
to run: a UUID inside a value matches any UUID, the fields in :data:`VOLATILE` match anything, and ``*_at`` fields
match any timestamp (or ``null`` where the doc shows ``null``). A command without ``-X`` (a read) is repeated for a
while until it matches: the workflow moves on its own between two commands.

``python -m tests.provisioning.walkthrough ORIGIN`` prints each command's actual output instead (to update the doc).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Queue
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "provisioning.md"
DOC_ORIGIN = "http://127.0.0.1:8000"
VOLATILE = frozenset({"request_id", "trace_id", "callback_token"})
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_END = "@@walkthrough-end@@"


@dataclass
class Step:
    """A command of the walkthrough, and what the doc shows it printing (``None``: nothing)."""

    line: int
    command: str
    expected: str | None = None
    kind: str = "json"
    """``json`` (compared as above) or ``text`` (compared as written)."""


def walkthrough(doc: Path = DOC) -> tuple[str, list[Step]]:
    """The setup block (the ``sh`` block that starts with ``BASE=``) and the doc's steps, in order."""
    text = doc.read_text(encoding="utf-8")
    blocks = [
        (text[: match.start()].count("\n") + 1, match.group(1), match.group(2))
        for match in re.finditer(r"^```(\w+)\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    ]
    setup = next(code for _, kind, code in blocks if kind == "sh" and code.startswith("BASE="))
    steps: list[Step] = []
    for line, kind, code in blocks:
        if kind == "sh" and code != setup:
            steps.append(Step(line, code))
        elif kind in ("json", "text") and steps and steps[-1].expected is None:
            steps[-1].expected, steps[-1].kind = code, kind
    return setup, steps


class Shell:
    """One bash process that runs commands one after the other and returns what each printed."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines: Queue[str] = Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)

    def run(self, command: str, timeout: float = 60) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command}\nprintf '\\n{_END}\\n'\n")
        self.process.stdin.flush()
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except Empty:
                raise AssertionError(f"no answer within {timeout} s to: {command}") from None
            if line.rstrip("\n") == _END:
                return "".join(out).strip()
            out.append(line)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=10)
        self._reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _normal(text: str) -> str:
    return _UUID.sub("<uuid>", text)


def differences(expected: Any, actual: Any, where: str) -> list[str]:
    """How ``actual`` differs from the doc's trimmed ``expected`` (empty when it matches)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {actual!r}"]
        problems = []
        for key, value in expected.items():
            if key not in actual:
                problems.append(f"{where}.{key}: missing")
            elif key in VOLATILE or (key.endswith("_at") and (value is None) == (actual[key] is None)):
                continue
            else:
                problems += differences(value, actual[key], f"{where}.{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected {len(expected)} items, got {actual!r}"]
        return [problem for i, item in enumerate(expected) for problem in differences(item, actual[i], f"{where}[{i}]")]
    if isinstance(expected, str) and isinstance(actual, str):
        return [] if _normal(expected) == _normal(actual) else [f"{where}: expected {expected!r}, got {actual!r}"]
    return [] if expected == actual else [f"{where}: expected {expected!r}, got {actual!r}"]


def check(step: Step, output: str, origin: str = DOC_ORIGIN) -> list[str]:
    """How the output of ``step`` (run against the app at ``origin``) differs from what the doc shows."""
    where = f"docs/provisioning.md:{step.line}"
    output = output.replace(origin, DOC_ORIGIN)
    if step.expected is None:
        return [f"{where}: the doc shows no output, got {output[:300]!r}"] if output else []
    if step.kind == "text":
        expected = step.expected.strip()
        return [] if _normal(expected) == _normal(output) else [f"{where}: expected {expected!r}, got {output!r}"]
    try:
        actual = json.loads(output)
    except json.JSONDecodeError:
        return [f"{where}: not JSON: {output[:300]!r}"]
    return differences(json.loads(step.expected), actual, where)


def run_walkthrough(origin: str, *, patience: float = 20.0) -> list[str]:
    """Run every step against the example app at ``origin``; every difference from the doc."""
    setup, steps = walkthrough()
    shell = Shell()
    problems: list[str] = []
    try:
        shell.run(setup.replace(DOC_ORIGIN, origin))
        for step in steps:
            command = step.command.replace(DOC_ORIGIN, origin)
            deadline = time.monotonic() + patience
            while True:
                found = check(step, shell.run(command), origin)
                if not found or " -X " in command or time.monotonic() > deadline:
                    break
                time.sleep(0.25)  # a read: the workflow may not have got there yet
            problems += found
    finally:
        shell.close()
    return problems


if __name__ == "__main__":
    shell = Shell()
    setup, steps = walkthrough()
    shell.run(setup.replace(DOC_ORIGIN, sys.argv[1]))
    for step in steps:
        print(f"--- line {step.line}\n$ {step.command.strip()}")
        print(shell.run(step.command.replace(DOC_ORIGIN, sys.argv[1])))
        time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0)
    shell.close()
