"""Fixtures of the webhook tests: read-model stores on every backend, a subscriber on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from litestar_registry.webhooks.store import MemoryWebhookStore, WebhookStore
from litestar_registry.webhooks.store.sqlalchemy import SQLAlchemyWebhookStore
from tests.backends import POSTGRES_URL
from tests.provisioning.conftest import postgres_schema, sqlite_url
from tests.webhooks.subscriber import Subscriber


@pytest.fixture
async def subscriber() -> AsyncIterator[Subscriber]:
    async with Subscriber() as running:
        yield running


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def webhook_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[WebhookStore]:
    """An open, empty webhook store of each backend (PostgreSQL: a schema of its own, dropped afterwards)."""
    if request.param == "memory":
        async with MemoryWebhookStore() as memory:
            yield memory
    elif request.param == "sqlite":
        async with SQLAlchemyWebhookStore(sqlite_url(tmp_path), create_schema=True) as sqlite:
            yield sqlite
    else:
        async with (
            postgres_schema() as options,
            SQLAlchemyWebhookStore(POSTGRES_URL, create_schema=True, engine_options=options) as postgres,
        ):
            yield postgres


@pytest.fixture
def subscriber_url(subscriber: Subscriber) -> str:
    return subscriber.url
