"""Durability with real app processes (uvicorn, every setting from ``REGISTRY_*`` variables) and a real subscriber.

- SQLite: SIGKILL the app while an attempt is in flight (the subscriber holds the request); the restarted app sends
  it again, with the same webhook-id, and the delivery ends delivered after one successful answer.
- SQLite: SIGKILL the app right after a burst of changes, wherever the relay and the deliveries stood; after the
  restart every event is delivered, under one webhook-id each, recorded delivered once.
- PostgreSQL: two instances relay one log at once; each delivery is started, attempted and received once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.provisioning.conftest import KEY, eventually
from tests.provisioning.test_http_durability import Instance, instances, postgres_database
from tests.webhooks.apps import ADMIN, ADMIN_KEY, PREFIX, SERVICE, SERVICE_KEY
from tests.webhooks.subscriber import Answer, Subscriber

pytestmark = pytest.mark.e2e


def app_settings(store_url: str, **extra: str) -> dict[str, str]:
    return {
        "REGISTRY_STORE_URL": store_url,
        "REGISTRY_SERVICE_KEYS": f"team={SERVICE_KEY}",
        "REGISTRY_ADMIN_KEYS": f"ops={ADMIN_KEY}",
        "REGISTRY_AUTO_APPROVE_ALL": "true",
        "REGISTRY_TTL_PATH": "",
        "REGISTRY_WEBHOOKS": "true",
        "REGISTRY_WEBHOOKS_KEYS": KEY,
        "REGISTRY_WEBHOOKS_ALLOW_LOOPBACK": "true",
        "REGISTRY_WEBHOOKS_RELAY_INTERVAL_SECONDS": "0.1",
        "REGISTRY_WEBHOOKS_RETRY_SCHEDULE": "0,0.5,0.5,0.5,0.5",
        "REGISTRY_WEBHOOKS_RETRY_JITTER": "0",
        **extra,
    }


@asynccontextmanager
async def webhook_instances(tmp_path: Path, settings: dict[str, str]) -> AsyncIterator[Callable[..., Any]]:
    """``instances`` of the provisioning durability tests, running this package's app instead."""
    async with instances(tmp_path, settings, module="tests.webhooks.http_app") as start:
        yield start


async def subscribe(app: Instance, url: str) -> dict[str, Any]:
    body = {"url": url, "topics": ["service.registered"]}
    response = await app.client.post(f"{PREFIX}/subscriptions", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


async def register(app: Instance, slug: str) -> None:
    body = {"slug": slug, "name": slug.title(), "version": "1.0.0"}
    response = await app.client.post("/api/v1/registry/register", json=body, headers=SERVICE)
    assert response.status_code == 201, response.text


async def deliveries(app: Instance, subscription_id: str) -> list[dict[str, Any]]:
    path = f"{PREFIX}/subscriptions/{subscription_id}/deliveries"
    response = await app.client.get(path, params={"limit": 500}, headers=ADMIN)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


async def all_delivered(app: Instance, subscription_id: str, count: int) -> list[dict[str, Any]]:
    async def check() -> list[dict[str, Any]] | None:
        found = await deliveries(app, subscription_id)
        return found if len(found) == count and all(d["state"] == "delivered" for d in found) else None

    result: list[dict[str, Any]] = await eventually(check, within=60, interval=0.1)
    return result


async def attempts(app: Instance, webhook_id: str) -> list[dict[str, Any]]:
    response = await app.client.get(f"{PREFIX}/deliveries/{webhook_id}/attempts", headers=ADMIN)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


async def test_sigkill_while_an_attempt_is_in_flight_then_restart(tmp_path: Path) -> None:
    held = Answer(204, delay=120)  # the first request is held until the app is dead
    settings = app_settings(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}")
    async with Subscriber.answering([held], default=204) as subscriber, webhook_instances(tmp_path, settings) as start:
        first = await start()
        subscription = await subscribe(first, subscriber.url)
        await register(first, "billing")
        [request] = await subscriber.wait_for(1, within=60)
        await first.kill()
        assert (tmp_path / "registry-dbos.sqlite").exists()  # DBOS's own file, beside the registry's

        second = await start()  # same files, same (default) executor id: DBOS recovers the delivery
        [delivered] = await all_delivered(second, subscription["id"], 1)
        assert len(subscriber.requests) == 2
        assert {r.headers["webhook-id"] for r in subscriber.requests} == {delivered["webhook_id"]}
        assert subscriber.requests[1].body == request.body
        recorded = await attempts(second, delivered["webhook_id"])
        assert [(a["attempt"], a["outcome"], a["status_code"]) for a in recorded] == [(1, "delivered", 204)]
        assert delivered["attempts"] == 1  # the cut-short attempt was made again, not counted twice


async def test_sigkill_right_after_a_burst_of_changes_loses_none(tmp_path: Path) -> None:
    settings = app_settings(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}")
    async with Subscriber() as subscriber, webhook_instances(tmp_path, settings) as start:
        first = await start()
        subscription = await subscribe(first, subscriber.url)
        slugs = [f"svc-{n}" for n in range(6)]
        await asyncio.gather(*(register(first, slug) for slug in slugs))
        await first.kill()  # wherever the relay and the deliveries were

        second = await start()
        delivered = await all_delivered(second, subscription["id"], len(slugs))
        ids = {d["webhook_id"] for d in delivered}
        assert len(ids) == len(slugs)
        received = Counter(r.headers["webhook-id"] for r in subscriber.requests)
        assert set(received) == ids  # every event arrived, under its own webhook-id
        assert {r.json()["subject"] for r in subscriber.requests} == set(slugs)
        for delivery in delivered:
            outcomes = [a["outcome"] for a in await attempts(second, delivery["webhook_id"])]
            assert outcomes.count("delivered") == 1, (delivery, outcomes)


@pytest.mark.postgres
async def test_two_relays_on_one_postgres_log_start_each_delivery_once(tmp_path: Path) -> None:
    async with (
        Subscriber() as subscriber,
        postgres_database() as url,
        webhook_instances(tmp_path, app_settings(url, REGISTRY_WEBHOOKS_RELAY_INTERVAL_SECONDS="0.02")) as start,
    ):
        a, b = await start(), await start()
        subscription = await subscribe(a, subscriber.url)
        slugs = [f"svc-{n}" for n in range(12)]
        for index, slug in enumerate(slugs):
            await register((a, b)[index % 2], slug)
        delivered = await all_delivered(b, subscription["id"], len(slugs))
        await asyncio.sleep(0.5)  # both relays went past every event by now
        received = Counter(r.headers["webhook-id"] for r in subscriber.requests)
        assert received == dict.fromkeys((d["webhook_id"] for d in delivered), 1)  # each sent once
        for delivery in delivered:
            assert [x["attempt"] for x in await attempts(a, delivery["webhook_id"])] == [1]
        executors = {x["executor_id"] for d in delivered for x in await attempts(a, d["webhook_id"])}
        assert len(executors) >= 1
        async with httpx.AsyncClient() as client:
            pids = {(await client.get(f"{app.base_url}/healthz")).json()["pid"] for app in (a, b)}
        assert len(pids) == 2


@pytest.mark.postgres
async def test_the_survivor_recovers_a_killed_instances_deliveries(tmp_path: Path) -> None:
    """Webhooks alone (no provisioning) share the instances' machinery: a killed instance's registration expires, and
    the survivor takes over the delivery it left sleeping between two attempts."""
    fast = {
        "REGISTRY_PROVISIONING_INSTANCE_TTL_SECONDS": "2",
        "REGISTRY_SWEEP_INTERVAL_SECONDS": "0.5",
        "REGISTRY_WEBHOOKS_RETRY_SCHEDULE": "0,4",
    }
    answers = [Answer(503)]  # the first attempt fails; the second waits 4 s, durably
    async with (
        Subscriber.answering(answers, default=204) as subscriber,
        postgres_database() as url,
        webhook_instances(tmp_path, app_settings(url, **fast)) as start,
    ):
        doomed = await start(REGISTRY_WEBHOOKS_RELAY_INTERVAL_SECONDS="0.05")
        survivor = await start(REGISTRY_WEBHOOKS_RELAY_INTERVAL_SECONDS="3600")  # its relay takes no part
        subscription = await subscribe(doomed, subscriber.url)
        await register(doomed, "billing")
        await subscriber.wait_for(1, within=60)
        [waiting] = await eventually(lambda: _retrying(survivor, subscription["id"]), within=60, interval=0.1)
        await doomed.kill()

        [delivered] = await all_delivered(survivor, subscription["id"], 1)
        assert delivered["webhook_id"] == waiting["webhook_id"]
        recorded = await attempts(survivor, delivered["webhook_id"])
        assert [(a["attempt"], a["status_code"]) for a in recorded] == [(1, 503), (2, 204)]
        assert recorded[0]["executor_id"] != recorded[1]["executor_id"]  # the second made by the survivor
        assert [r.headers["webhook-id"] for r in subscriber.requests] == [delivered["webhook_id"]] * 2


async def _retrying(app: Instance, subscription_id: str) -> list[dict[str, Any]] | None:
    found = [d for d in await deliveries(app, subscription_id) if d["state"] == "retrying"]
    return found or None
