"""The webhook admin routes: closed to all but admins, every bad input a 4xx that changes nothing, the secret shown
only when it is made, and 501 while webhooks are off. The routes come from the app's own OpenAPI document, so a new
one is covered without a change here."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from litestar import Litestar

from litestar_registry import RegistryConfig, RegistryPlugin
from tests.clients import serve
from tests.webhooks.apps import ADMIN, PREFIX, SERVICE, TENANT, App, running_app, settings

WRONG = {"Authorization": "Bearer not-a-key-of-anyone-0123"}
SUBSCRIPTION_ID = "0193a0b1-1111-7222-8333-444455556666"
WEBHOOK_ID = f"msg_{'0' * 32}_1"
NUL = "a\x00b"


def operations(app: Litestar) -> dict[str, dict[str, Any]]:
    document = app.openapi_schema.to_schema()
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        if path.startswith(PREFIX)
        for method, operation in item.items()
    }


def concrete(operation: str, **values: str) -> tuple[str, str]:
    method, path = operation.split(" ", 1)
    values = {"subscription_id": SUBSCRIPTION_ID, "webhook_id": WEBHOOK_ID, **values}
    for name, value in values.items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    return method, path


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["trace_id"]
    return body


@pytest.fixture
async def app(tmp_path: Path) -> Any:
    async with running_app("memory", tmp_path) as running:
        yield running


async def everything(app: App) -> Any:
    """What a request could change: every subscription as stored."""
    engine = app.plugin.webhooks.require()
    return (await engine.store.find_subscriptions(after=None, limit=100)).items


async def test_every_route_needs_an_admin_key(app: App) -> None:
    found = operations(app.client._transport.app)  # type: ignore[attr-defined]
    assert len(found) == 12
    for operation, spec in found.items():
        assert spec["security"] == [{"RegistryAdminKey": []}], operation
        assert {"401", "403", "501"} <= set(spec["responses"]), operation
        method, path = concrete(operation)
        for headers, status in (({}, 401), (WRONG, 401), (SERVICE, 403), (TENANT, 403)):
            response = await app.client.request(method, path, json={}, headers=headers)
            body = problem(response, status)
            assert body["code"] == ("authentication_required" if status == 401 else "access_denied"), operation
    assert await everything(app) == []


async def test_off_every_route_answers_501_to_everyone(tmp_path: Path) -> None:
    config = RegistryConfig(**settings("memory", tmp_path, webhooks=False))
    app = Litestar(plugins=[RegistryPlugin(config)])
    assert operations(app) == {}  # not in the document while off
    async with serve(app) as client:
        for method, path in [("POST", f"{PREFIX}/subscriptions"), ("GET", f"{PREFIX}/subscriptions")]:
            for headers in ({}, ADMIN):
                body = problem(await client.request(method, path, json={}, headers=headers), 501)
                assert body["code"] == "webhooks_unavailable"
                assert "REGISTRY_WEBHOOKS=true" in body["detail"]


async def test_create_shows_the_secret_once_and_no_read_shows_it(app: App, subscriber_url: str) -> None:
    created = await app.subscribe(subscriber_url, description="ops", topics=["service.expired", "service.expired"])
    secret = created["secret"]
    assert created["topics"] == ["service.expired"]  # sorted, without duplicates
    assert (created["enabled"], created["disabled_reason"], created["previous_secrets_valid_until"]) == (
        True,
        None,
        None,
    )
    one = await app.client.get(f"{PREFIX}/subscriptions/{created['id']}", headers=ADMIN)
    listed = await app.client.get(f"{PREFIX}/subscriptions", headers=ADMIN)
    for response in (one, listed):
        assert response.status_code == 200
        assert secret not in response.text
        assert secret.removeprefix("whsec_") not in response.text
        assert "secret" not in str(response.json()["data"]).replace("previous_secrets_valid_until", "")
    stored = await app.plugin.webhooks.require().store.get_subscription(created["id"])
    assert stored is not None
    assert secret not in str(stored)  # sealed at rest
    assert app.plugin.webhooks.require().cipher.open(stored.secret) == secret


async def test_update_enable_disable_and_delete(app: App, subscriber_url: str) -> None:
    created = await app.subscribe(subscriber_url)
    path = f"{PREFIX}/subscriptions/{created['id']}"
    response = await app.client.patch(
        path, json={"topics": ["service.registered"], "description": None, "enabled": False}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    changed = response.json()["data"]
    assert (changed["topics"], changed["description"], changed["enabled"], changed["url"]) == (
        ["service.registered"],
        None,
        False,
        subscriber_url,
    )
    assert changed["disabled_reason"] == "disabled by an admin"
    other = subscriber_url.replace("/hooks", "/other")
    response = await app.client.patch(path, json={"url": other}, headers=ADMIN)
    assert (response.json()["data"]["url"], response.json()["data"]["enabled"]) == (other, False)
    assert (await app.client.post(f"{path}/enable", headers=ADMIN)).json()["data"]["enabled"] is True
    assert (await app.client.post(f"{path}/disable", headers=ADMIN)).json()["data"]["enabled"] is False
    assert (await app.client.delete(path, headers=ADMIN)).status_code == 204
    problem(await app.client.get(path, headers=ADMIN), 404)
    problem(await app.client.delete(path, headers=ADMIN), 404)


async def test_subscriptions_list_a_page_at_a_time(app: App, subscriber_url: str) -> None:
    made = []
    for _ in range(5):
        made.append((await app.subscribe(subscriber_url))["id"])
        app.clock.advance(0.002)  # ids are UUIDv7 of the clock's time
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await app.client.get(f"{PREFIX}/subscriptions", params=params, headers=ADMIN)).json()
        seen += [item["id"] for item in page["data"]]
        cursor = page["meta"].get("next_cursor")
        if cursor is None:
            break
    assert seen == made
    problem(await app.client.get(f"{PREFIX}/subscriptions", params={"cursor": "bm9wZQ"}, headers=ADMIN), 422)


BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"url": "ftp://hooks.example/in", "topics": ["service.registered"]}, "url"),
    ({"url": "http://user:pw@hooks.example/in", "topics": ["service.registered"]}, "url"),
    ({"url": "not a url", "topics": ["service.registered"]}, "url"),
    ({"url": "http://10.1.2.3/in", "topics": ["service.registered"]}, "url"),  # private, not allowed
    ({"url": "http://169.254.169.254/latest", "topics": ["service.registered"]}, "url"),  # cloud metadata
    ({"url": "http://[::ffff:10.0.0.1]/in", "topics": ["service.registered"]}, "url"),
    ({"url": "http://127.0.0.1:1/in", "topics": ["service.nothing"]}, "topics"),
    ({"url": "http://127.0.0.1:1/in", "topics": []}, "topics"),
    ({"url": "http://127.0.0.1:1/in", "topics": "service.registered"}, "topics"),
    ({"url": "http://127.0.0.1:1/in"}, "topics"),
    ({"url": f"http://127.0.0.1:1/{NUL}", "topics": ["service.registered"]}, "url"),
    ({"url": "http://127.0.0.1:1/in", "topics": ["service.registered"], "description": NUL}, "description"),
    ({"url": "http://127.0.0.1:1/" + "x" * 3000, "topics": ["service.registered"]}, "url"),
    ({"url": "http://127.0.0.1:1/in", "topics": ["service.registered"], "description": "x" * 3000}, "description"),
    ({"url": "http://127.0.0.1:1/in", "topics": ["service.registered"], "secret": "whsec_short"}, "secret"),
    ({"url": "http://127.0.0.1:1/in", "topics": ["service.registered"], "secret": "x" * 60}, "secret"),
    ({"url": "http://127.0.0.1:1/in", "topics": ["service.registered"], "extra": 1}, "extra"),
]
"""Bodies a creation refuses, and the field it names."""


async def test_bad_input_is_a_422_that_changes_nothing(app: App) -> None:
    for body, field in BAD_BODIES:
        response = await app.client.post(f"{PREFIX}/subscriptions", json=body, headers=ADMIN)
        details = problem(response, 422)
        assert any(field in error["field"] for error in details["errors"]), (body, details)
        if "secret" in body:
            assert body["secret"] not in response.text
    assert await everything(app) == []


async def test_a_private_url_is_allowed_only_when_the_host_allows_it(tmp_path: Path) -> None:
    body = {"url": "http://10.1.2.3/in", "topics": ["service.registered"]}
    async with running_app("memory", tmp_path, webhooks_allow_private=True) as app:
        assert (await app.client.post(f"{PREFIX}/subscriptions", json=body, headers=ADMIN)).status_code == 201
        loopback = {"url": "http://127.0.0.1:9/in", "topics": ["service.registered"]}
        assert (await app.client.post(f"{PREFIX}/subscriptions", json=loopback, headers=ADMIN)).status_code == 201
    async with running_app("memory", tmp_path, webhooks_allow_loopback=False) as app:
        loopback = {"url": "http://localhost:9/in", "topics": ["service.registered"]}
        details = problem(await app.client.post(f"{PREFIX}/subscriptions", json=loopback, headers=ADMIN), 422)
        assert "loopback" in details["detail"]


async def test_huge_and_deep_bodies_and_bad_parameters_are_4xx_on_every_route(app: App, subscriber_url: str) -> None:
    created = await app.subscribe(subscriber_url)
    before = await everything(app)
    found = operations(app.client._transport.app)  # type: ignore[attr-defined]
    for operation, spec in found.items():
        method, path = concrete(operation, subscription_id=created["id"])
        if "requestBody" in spec:
            huge = await app.client.request(
                method, path, content=b'{"description":"' + b"x" * 100_000 + b'"}', headers=ADMIN
            )
            problem(huge, 413)
            deep = await app.client.request(
                method, path, content="[" * 20_000 + "]" * 20_000, headers={**ADMIN, "Content-Type": "application/json"}
            )
            assert "nested too deeply" in problem(deep, 400)["detail"]
        for name in ("subscription_id", "webhook_id"):
            if "{" + name + "}" in operation:
                for value in (NUL, "x" * 500, "../subscriptions", SUBSCRIPTION_ID.upper()):
                    method, bad = concrete(operation, **{name: value})
                    response = await app.client.request(method, bad, json={}, headers=ADMIN)
                    assert response.status_code in (404, 422), (operation, value, response.text)
        for parameter in spec.get("parameters", []):
            if parameter["in"] == "query":
                method, path = concrete(operation, subscription_id=created["id"])
                for value in (NUL, "x" * 50_000):
                    response = await app.client.request(method, path, params={parameter["name"]: value}, headers=ADMIN)
                    problem(response, 422)
    assert await everything(app) == before


async def test_deliveries_filter_by_state_and_unknown_ids_are_404(app: App, subscriber_url: str) -> None:
    created = await app.subscribe(subscriber_url)
    base = f"{PREFIX}/subscriptions/{created['id']}/deliveries"
    assert (await app.client.get(base, params={"state": ["dead", "pending"]}, headers=ADMIN)).json()["data"] == []
    problem(await app.client.get(base, params={"state": "lost"}, headers=ADMIN), 422)
    problem(await app.client.get(f"{PREFIX}/subscriptions/{SUBSCRIPTION_ID}/deliveries", headers=ADMIN), 404)
    for suffix in ("", "/attempts"):
        problem(await app.client.get(f"{PREFIX}/deliveries/{WEBHOOK_ID}{suffix}", headers=ADMIN), 404)
