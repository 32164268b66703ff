from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from litestar_registry.store import ServiceStore
from tests.backends import BACKENDS, ensure_postgres_database, open_store


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
