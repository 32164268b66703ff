"""The provisioning routes as the OpenAPI document describes them: every route, its problems, and schemathesis
fuzzing them on the running example app (provisioning on): no 500, every answer matching its documented schema."""

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

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("provisioning-fuzz")]  # its module-scoped app, once

PREFIX = "/api/v1/provisioning"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
"""Generated cases per route (more, to search harder: ``FUZZ_EXAMPLES=400``)."""
TENANT = {"Authorization": "Bearer demo-tenant-key-acme"}
ROUTES = {
    "/workflows": {"post": "201", "get": "200"},
    "/workflows/{workflow_id}": {"get": "200"},
    "/workflows/{workflow_id}/cancel": {"post": "200"},
    "/workflows/{workflow_id}/retry": {"post": "200"},
    "/status/{service_slug}": {"get": "200"},
    "/callback": {"post": "200"},
}


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with example_app(tmp_path_factory.mktemp("fuzz")) as running:
        body = {
            "slug": "billing-api",  # the slug the schema's examples name
            "name": "Billing",
            "version": "1.0.0",
            "endpoints": [{"name": "provisioning", "url": f"{running}/demo/provisioner"}],
        }
        headers = {"Authorization": "Bearer demo-service-key"}
        assert httpx.post(f"{running}/api/v1/registry/register", json=body, headers=headers).status_code == 201
        yield running


@pytest.fixture
def document(origin: str) -> dict[str, Any]:
    return dict(httpx.get(f"{origin}/openapi.json").json())


def test_every_provisioning_route_is_documented_with_its_problems(document: dict[str, Any]) -> None:
    paths = {path.removeprefix(PREFIX): item for path, item in document["paths"].items() if path.startswith(PREFIX)}
    assert set(paths) == set(ROUTES)
    for path, methods in ROUTES.items():
        assert set(paths[path]) == set(methods), path
        for method, success in methods.items():
            operation = paths[path][method]
            assert operation["tags"] == ["provisioning", "registry"]
            assert operation["security"] == ([{}] if path == "/callback" else [{"RegistryTenantKey": []}])
            statuses = set(operation["responses"])
            tenant_only = {"401", "403"} if path != "/callback" else set()
            assert {success, "400", "422", "500", "501", *tenant_only} <= statuses, (path, method)
            for status in statuses - {success}:
                content = operation["responses"][status]["content"]
                assert content == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    assert document["components"]["securitySchemes"]["RegistryTenantKey"]["scheme"] == "bearer"
    callback = paths["/callback"]["post"]["responses"]
    assert {"404", "409", "410"} <= set(callback)
    assert "401" not in callback  # the token is the credential
    request = document["components"]["schemas"]["CallbackRequest"]
    assert set(request["properties"]) == {"callback_token", "status", "endpoint", "credentials", "message", "metadata"}
    assert request["required"] == ["callback_token", "status"]
    listed = {parameter["name"] for parameter in paths["/workflows"]["get"]["parameters"]}
    assert listed == {"status", "service_slug", "cursor", "limit"}
    detail = document["components"]["schemas"]["WorkflowDetailView"]
    assert "steps" in detail["properties"]
    assert "tenant" not in detail["properties"]


def test_the_provisioning_routes_answer_as_documented(origin: str) -> None:
    schema = schemathesis.openapi.from_url(f"{origin}/openapi.json").include(path_regex=f"^{PREFIX}/")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 7

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")),
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def answers_as_documented(case: Any) -> None:
            # Input the schema allows may still break a rule of the domain, which answers 422 by design (an unknown
            # definition, inputs its definition refuses, a cursor this registry never handed out): every other check
            # runs, the 500s and the answers that do not match their documented schema among them.
            case.call_and_validate(headers=TENANT, excluded_checks=[positive_data_acceptance])

        answers_as_documented()


def test_the_success_answers_match_their_schemas_too(origin: str) -> None:
    """Random input seldom names a live service and a definition: walk the success path on purpose, checked alike."""
    schema = schemathesis.openapi.from_url(f"{origin}/openapi.json")

    def call(path: str, method: str, **parts: Any) -> Any:
        case = schema[f"{PREFIX}{path}"][method].Case(**parts)
        response = case.call_and_validate(headers=TENANT, excluded_checks=[positive_data_acceptance])
        assert response.status_code < 300, response.text
        return response.json()["data"]

    body = {"service_slug": "billing-api", "definition": "provision", "inputs": {"plan": "pro"}}
    workflow = call("/workflows", "POST", body=body)
    identified = {"workflow_id": workflow["id"]}
    token = None
    for _ in range(200):
        received = httpx.get(f"{origin}/demo/provisioner/inbox/{workflow['id']}")
        if received.status_code == 200:
            token = received.json()["callback_token"]
            break
        time.sleep(0.05)
    assert token is not None
    call("/workflows", "GET", query={"service_slug": "billing-api", "status": ["pending", "running", "waiting"]})
    call("/workflows/{workflow_id}", "GET", path_parameters=identified)
    call("/status/{service_slug}", "GET", path_parameters={"service_slug": "billing-api"})
    callback = {"callback_token": token, "status": "succeeded", "credentials": {"password": "p"}, "metadata": {"a": 1}}
    call("/callback", "POST", body=callback)
    second = call("/workflows", "POST", body=body)
    call("/workflows/{workflow_id}/cancel", "POST", path_parameters={"workflow_id": second["id"]})
    call("/workflows/{workflow_id}/retry", "POST", path_parameters={"workflow_id": second["id"]})
    call("/workflows/{workflow_id}/cancel", "POST", path_parameters={"workflow_id": second["id"]})
