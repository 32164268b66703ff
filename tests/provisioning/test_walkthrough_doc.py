"""docs/provisioning.md, run as written against the example app in a process of its own, twice on one SQLite file
(a reader may run it again): every command prints what the doc shows."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.provisioning.conftest import example_app
from tests.provisioning.walkthrough import run_walkthrough, walkthrough

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.name == "nt", reason="bash")]


@pytest.fixture
def example_origin(tmp_path: Path) -> Iterator[str]:
    with example_app(tmp_path) as origin:
        yield origin
    assert (tmp_path / "registry-dbos.sqlite").exists()  # DBOS kept its own file beside the registry's


def test_the_provisioning_walkthrough_prints_what_the_doc_shows_twice_over(example_origin: str) -> None:
    _, steps = walkthrough()
    assert sum(step.expected is not None for step in steps) >= 15
    for attempt in ("first run", "second run"):
        problems = run_walkthrough(example_origin)
        assert not problems, f"{attempt}:\n" + "\n".join(problems)
