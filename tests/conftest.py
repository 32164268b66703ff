from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from litestar_registry.store import ServiceStore
from tests.backends import BACKENDS, WORKER, ensure_postgres_database, open_store

PROCESS_HEAVY = (
    "tests/e2e/",
    "tests/test_host_intact.py",
    "tests/test_dev_script.py",
    "tests/provisioning/test_durability.py",
)
"""Modules (beside those marked ``e2e``) whose tests run app processes for many seconds each."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under xdist, hand out the tests that run app processes first (whole modules, in their order): the quick ones
    then fill both workers up to the end, instead of one worker finishing a minute-long test while the other idles."""
    if WORKER:
        items.sort(key=lambda item: not (item.get_closest_marker("e2e") or item.nodeid.startswith(PROCESS_HEAVY)))


@pytest.fixture(scope="session", autouse=True)
def _worker_database() -> None:
    """Under pytest-xdist, this worker's own PostgreSQL database, created before its first test."""
    ensure_postgres_database()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(backend: str, tmp_path: Path) -> AsyncIterator[ServiceStore]:
    async with open_store(backend, tmp_path) as opened:
        yield opened


# httpx logs every request at INFO; the test client's requests are not news.
logging.getLogger("httpx").setLevel(logging.WARNING)
