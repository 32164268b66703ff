"""The webhook admin routes as the OpenAPI document describes them, and schemathesis fuzzing them on the running
example app (webhooks on, in a process of its own: DBOS's threads use ``random`` while Hypothesis draws): no 500, every
answer matching its documented schema and status."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from tests.provisioning.conftest import example_app

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("webhooks-fuzz")]  # its module-scoped app, once

PREFIX = "/api/v1/admin/webhooks"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
"""Generated cases per route (more, to search harder: ``FUZZ_EXAMPLES=400``)."""
ADMIN = {"Authorization": "Bearer demo-admin-key-0000"}
ROUTES = {
    "/subscriptions": {"post": "201", "get": "200"},
    "/subscriptions/{subscription_id}": {"get": "200", "patch": "200", "delete": "204"},
    "/subscriptions/{subscription_id}/enable": {"post": "200"},
    "/subscriptions/{subscription_id}/disable": {"post": "200"},
    "/subscriptions/{subscription_id}/rotate-secret": {"post": "200"},
    "/subscriptions/{subscription_id}/deliveries": {"get": "200"},
    "/deliveries/{webhook_id}": {"get": "200"},
    "/deliveries/{webhook_id}/attempts": {"get": "200"},
    "/deliveries/{webhook_id}/replay": {"post": "202"},
}


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with example_app(tmp_path_factory.mktemp("fuzz")) as running:
        yield running


@pytest.fixture
def document(origin: str) -> dict[str, Any]:
    return dict(httpx.get(f"{origin}/openapi.json").json())


def test_every_webhook_route_is_documented_with_its_problems(document: dict[str, Any]) -> None:
    paths = {path.removeprefix(PREFIX): item for path, item in document["paths"].items() if path.startswith(PREFIX)}
    assert set(paths) == set(ROUTES)
    for path, methods in ROUTES.items():
        assert set(paths[path]) == set(methods), path
        for method, success in methods.items():
            operation = paths[path][method]
            assert operation["tags"] == ["registry", "webhooks"]
            assert operation["security"] == [{"RegistryAdminKey": []}]
            statuses = set(operation["responses"])
            assert {success, "400", "401", "403", "422", "500", "501"} <= statuses, (path, method)
            for status in statuses - {success}:
                content = operation["responses"][status]["content"]
                assert content == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    schemas = document["components"]["schemas"]
    assert "secret" not in schemas["SubscriptionView"]["properties"]
    assert "secret" in schemas["SecretShown"]["properties"]
    assert set(schemas["SubscriptionCreate"]["required"]) == {"url", "topics"}
    assert set(schemas["DeliveryState"]["enum"]) == {"pending", "retrying", "delivered", "dead"}


def test_the_webhook_routes_answer_as_documented(origin: str) -> None:
    schema = schemathesis.openapi.from_url(f"{origin}/openapi.json").include(path_regex=f"^{PREFIX}/")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 12

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def answers_as_documented(case: Any) -> None:
            # Input the schema allows may still break a rule of the domain, which answers 422 by design (a URL the
            # outbound policy refuses, a cursor this registry never handed out): every other check runs.
            case.call_and_validate(headers=ADMIN, excluded_checks=[positive_data_acceptance])

        answers_as_documented()


def test_the_success_answers_match_their_schemas_too(origin: str) -> None:
    """Random input seldom names a subscription or a delivery: walk the success path on purpose, checked alike."""
    schema = schemathesis.openapi.from_url(f"{origin}/openapi.json")

    def call(path: str, method: str, **parts: Any) -> Any:
        case = schema[f"{PREFIX}{path}"][method].Case(**parts)
        response = case.call_and_validate(headers=ADMIN, excluded_checks=[positive_data_acceptance])
        assert response.status_code < 300, response.text
        return response.json()["data"] if response.content else None

    # The example app itself answers 404 at this URL: a failing subscriber, so the delivery walks into retrying.
    body = {"url": f"{origin}/nowhere", "topics": ["service.registered"], "description": "fuzz"}
    created = call("/subscriptions", "POST", body=body)
    identified = {"subscription_id": created["id"]}
    call("/subscriptions", "GET", query={"limit": 5})
    call("/subscriptions/{subscription_id}", "GET", path_parameters=identified)
    call("/subscriptions/{subscription_id}", "PATCH", path_parameters=identified, body={"description": None})
    call("/subscriptions/{subscription_id}/rotate-secret", "POST", path_parameters=identified, body={})
    registered = {"slug": "fuzz-billing", "name": "Fuzz", "version": "1.0.0"}
    service = {"Authorization": "Bearer demo-service-key"}
    assert httpx.post(f"{origin}/api/v1/registry/register", json=registered, headers=service).status_code == 201
    deliveries: list[dict[str, Any]] = []
    for _ in range(200):
        deliveries = call("/subscriptions/{subscription_id}/deliveries", "GET", path_parameters=identified)
        if deliveries and deliveries[0]["attempts"] >= 1:
            break
        time.sleep(0.05)
    webhook = {"webhook_id": deliveries[0]["webhook_id"]}
    call("/deliveries/{webhook_id}", "GET", path_parameters=webhook)
    call("/deliveries/{webhook_id}/attempts", "GET", path_parameters=webhook)
    call("/subscriptions/{subscription_id}/disable", "POST", path_parameters=identified)  # ends it: dead
    call("/subscriptions/{subscription_id}/enable", "POST", path_parameters=identified)
    call("/deliveries/{webhook_id}/replay", "POST", path_parameters=webhook)
    call("/subscriptions/{subscription_id}", "DELETE", path_parameters=identified)
