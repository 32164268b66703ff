"""No input gives a 500, on any route, dialect or backend, before or after authentication, and none changes the store.

Each case answers a 4xx in its dialect's shape (problem+json on the registry dialect, ``{"detail"}`` on the TTL
dialect). The routes come from the app's own OpenAPI document, so a new route is covered without a change here.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from litestar import Litestar

from litestar_registry import RegistryConfig, RegistryPlugin
from litestar_registry.core.models import ServiceQuery
from litestar_registry.core.validation import MAX_DEPTH, SEARCH_MAX_LENGTH
from tests.api.conftest import ADMIN, A, Harness, MakeApp, registration
from tests.api.test_registry_routes import HEARTBEAT, REGISTER, SERVICES, problem

TTL_KEY = "secret-ttl-key-0123"
KEY = {"X-Service-Key": TTL_KEY}
V2 = "/v2/services"
DOCUMENT = Litestar(
    plugins=[RegistryPlugin(RegistryConfig(store_url="memory://", ttl_registration_key=TTL_KEY))]
).openapi_schema.to_schema()
SURFACES = ("/api/v1/registry/", "/api/v1/entrypoints", "/api/v1/admin/registry/", V2)
"""Both registry dialects, discovery and admin (provisioning has its own tests, in ``tests/provisioning``)."""
OPERATIONS = {
    f"{method.upper()} {path}": operation
    for path, item in DOCUMENT["paths"].items()
    if path.startswith(SURFACES)
    for method, operation in item.items()
}
WITH_PARAMETERS = sorted(
    name
    for name, operation in OPERATIONS.items()
    if any(parameter["in"] in ("path", "query") for parameter in operation.get("parameters", []))
)
WITH_BODY = sorted(name for name, operation in OPERATIONS.items() if "requestBody" in operation)
NUL = "a\x00b"


def url(operation: str, values: dict[str, str]) -> tuple[str, str]:
    """Method and path of ``operation`` with its path parameters set (percent-encoded) from ``values``."""
    method, path = operation.split(" ", 1)
    for name, value in values.items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    return method, path


def keys_for(operation: str) -> dict[str, str]:
    """The key the route takes: the TTL key on the TTL dialect, the admin key on admin routes, a service key else."""
    path = operation.split(" ", 1)[1]
    return KEY if path.startswith(V2) else ADMIN if "/admin/" in path else A


def refused(response: httpx.Response, operation: str, statuses: tuple[int, ...]) -> None:
    """A 4xx among ``statuses``, in the shape of the route's dialect."""
    assert response.status_code in statuses, (operation, response.status_code, response.text)
    if operation.split(" ", 1)[1].startswith(V2):
        assert response.headers["content-type"].startswith("application/json"), response.headers
        assert set(response.json()) == {"detail"}, response.text
    else:
        assert response.headers["content-type"].startswith("application/problem+json"), response.headers
        body = response.json()
        assert body["status"] == response.status_code, body
        assert body["trace_id"], body


async def state(h: Harness) -> Any:
    """Everything the store holds that a request could change."""
    records = (await h.plugin.store.find(ServiceQuery(limit=100))).items
    return records, {record.slug: await h.plugin.store.versions(record.slug) for record in records}


@pytest.fixture
async def v2(make_harness: MakeApp) -> Harness:
    """A registry with services from both dialects, one of them pending (so that approve and reject apply)."""
    h: Harness = await make_harness(ttl_registration_key=TTL_KEY)
    await h.register("billing")
    await h.register("pending-one", headers={"Authorization": "Bearer key-stranger-0123456789abcdef"})
    body = {"url": "http://my-model:8080", "info": {"id": "my-model", "display_name": "M", "model_metadata": {}}}
    assert (await h.client.post(f"{V2}/$register", json=body, headers=KEY)).status_code == 200
    return h


@pytest.mark.parametrize("operation", WITH_PARAMETERS)
async def test_nul_in_a_path_or_query_parameter_is_a_4xx_and_changes_nothing(v2: Harness, operation: str) -> None:
    parameters = [p for p in OPERATIONS[operation]["parameters"] if p["in"] in ("path", "query")]
    valid = {p["name"]: "my-model" if "{id}" in operation else "billing" for p in parameters if p["in"] == "path"}
    before = await state(v2)
    for parameter in parameters:
        values, query = dict(valid), {}
        if parameter["in"] == "path":
            values[parameter["name"]] = NUL
        else:
            query[parameter["name"]] = NUL
        method, path = url(operation, values)
        for headers, statuses in (({}, (401, 422)), (keys_for(operation), (422,))):
            response = await v2.client.request(method, path, params=query, headers=headers)
            refused(response, operation, statuses)
    assert await state(v2) == before


@pytest.mark.parametrize("operation", WITH_BODY)
async def test_json_nested_too_deep_to_decode_is_a_400_before_and_after_authentication(
    v2: Harness, operation: str
) -> None:
    depth = 20_000  # far past what the decoder takes, well within the body limit
    method, path = url(operation, {})
    before = await state(v2)
    for headers in ({}, keys_for(operation)):
        response = await v2.client.request(
            method, path, content="[" * depth + "]" * depth, headers={**headers, "Content-Type": "application/json"}
        )
        refused(response, operation, (400,))
        detail = response.json()["detail"]
        assert "nested too deeply" in detail, detail
    assert await state(v2) == before


def nested(levels: int) -> Any:
    value: Any = "deep"
    for _ in range(levels):
        value = {"level": value}
    return value


async def test_free_form_data_nested_deeper_than_the_limit_is_a_422_on_both_dialects(v2: Harness) -> None:
    before = await state(v2)
    body = registration("deep", metadata={"x": nested(MAX_DEPTH)})
    details = problem(await v2.client.post(REGISTER, json=body, headers=A), 422, "invalid_input")
    assert details["errors"][0]["field"].startswith("metadata.x.level"), details
    ttl = {"url": "http://deep:1", "info": {"id": "deep", "display_name": "D", "model_metadata": {}, "x": nested(40)}}
    response = await v2.client.post(f"{V2}/$register", json=ttl, headers=KEY)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:3] == ["body", "info", "x"]
    assert await state(v2) == before
    shallow = registration("shallow", metadata={"x": nested(MAX_DEPTH - 4)})
    assert (await v2.client.post(REGISTER, json=shallow, headers=A)).status_code == 201


@pytest.mark.parametrize(
    "timestamp", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59.999999-00:01"]
)
async def test_a_heartbeat_timestamp_out_of_range_in_utc_is_a_422_that_changes_nothing(
    v2: Harness, timestamp: str
) -> None:
    before = await state(v2)
    response = await v2.client.post(HEARTBEAT, json={"slug": "billing", "timestamp": timestamp}, headers=A)
    details = problem(response, 422, "invalid_input")
    assert [error["field"] for error in details["errors"]] == ["timestamp"]
    assert await state(v2) == before


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("9999-12-31T23:59:59.999999+00:00", "9999-12-31T23:59:59.999999Z"),
        ("0001-01-01T00:00:00+00:00", "0001-01-01T00:00:00Z"),
        ("0001-01-01T23:58:00+23:58", "0001-01-01T00:00:00Z"),
    ],
)
async def test_the_extreme_timestamps_that_fit_are_kept_by_every_backend(v2: Harness, sent: str, kept: str) -> None:
    response = await v2.client.post(HEARTBEAT, json={"slug": "billing", "timestamp": sent}, headers=A)
    assert response.status_code == 200, response.text
    shown = (await v2.client.get(f"{SERVICES}/billing", headers=A)).json()["data"]["health"]
    assert shown["reported_at"] == kept


async def test_every_query_string_is_bounded(v2: Harness) -> None:
    before = await state(v2)
    for name in ("q", "tag", "capability", "cursor"):
        response = await v2.client.get(SERVICES, params={name: "x" * 50_000}, headers=A)
        assert [e["field"] for e in problem(response, 422, "invalid_input")["errors"]] == [name], response.text
    for name in ("capability", "protocol", "cursor"):
        response = await v2.client.get("/api/v1/entrypoints", params={name: "x" * 50_000}, headers=A)
        problem(response, 422, "invalid_input")
    assert await state(v2) == before
    # The longest search there is, made of LIKE's own special characters, is an ordinary search on every backend.
    longest = ("%_\\" * SEARCH_MAX_LENGTH)[:SEARCH_MAX_LENGTH]
    response = await v2.client.get(SERVICES, params={"q": longest}, headers=A)
    assert (response.status_code, response.json()["data"]) == (200, [])
    assert (await v2.client.get(SERVICES, params={"q": "ILLI"}, headers=A)).json()["meta"]["count"] == 1


async def test_a_query_parameter_given_twice_is_a_422_unless_it_takes_a_list(v2: Harness) -> None:
    twice = await v2.client.get(f"{SERVICES}?tag=finance&tag=other", headers=A)
    assert [e["field"] for e in problem(twice, 422, "invalid_input")["errors"]] == ["tag"]
    listed = await v2.client.get(f"{SERVICES}?status=active&status=pending", headers=A)
    assert [s["slug"] for s in listed.json()["data"]] == ["billing", "my-model"]


async def test_an_unexpected_failure_is_a_logged_500_with_its_trace_id_on_both_dialects(
    make_harness: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(slug: str) -> list[str]:
        raise RuntimeError(f"the host's dependents check failed for {slug}")

    h = await make_harness(ttl_registration_key=TTL_KEY, dependents_check=broken)
    await h.register()
    body = {"url": "http://my-model:8080", "info": {"id": "my-model", "display_name": "M", "model_metadata": {}}}
    await h.client.post(f"{V2}/$register", json=body, headers=KEY)
    logger = logging.getLogger("litestar_registry")
    logger.addHandler(caplog.handler)  # the app's logging config has replaced the root's handlers by now
    try:
        registry = await h.client.request("DELETE", REGISTER, json={"slug": "billing"}, headers=A)
        ttl = await h.client.delete(f"{V2}/my-model", headers=KEY)
    finally:
        logger.removeHandler(caplog.handler)
    trace_id = problem(registry, 500, "internal_error")["trace_id"]
    assert "RuntimeError" not in registry.text
    assert ttl.status_code == 500
    assert set(ttl.json()) == {"detail"}
    ttl_trace_id = ttl.json()["detail"].rsplit(" ", 1)[-1].rstrip(")")
    logged = {record.getMessage(): record for record in caplog.records if record.levelno == logging.ERROR}
    for trace in (trace_id, ttl_trace_id):
        [record] = [record for message, record in logged.items() if trace in message]
        assert record.exc_info is not None
        assert "dependents check failed" in str(record.exc_info[1])
    assert await h.plugin.store.get("billing") is not None
    assert await h.plugin.store.get("my-model") is not None
