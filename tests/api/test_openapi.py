"""The OpenAPI document lists every registry route with its request, response and problem schemas."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Harness

PREFIX = "/api/v1"
ROUTES = {
    "/registry/register": {"post": "201", "put": "200", "delete": "204"},
    "/registry/heartbeat": {"post": "200"},
    "/registry/services": {"get": "200"},
    "/registry/services/{slug}": {"get": "200"},
    "/registry/services/{slug}/versions": {"get": "200"},
    "/entrypoints": {"get": "200"},
    "/entrypoints/{slug}": {"get": "200"},
    "/admin/registry/services/{slug}/approve": {"post": "200"},
    "/admin/registry/services/{slug}/reject": {"post": "200"},
    "/admin/registry/services/{slug}": {"delete": "204"},
}


def resolve(schema: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    name = ref["$ref"].rsplit("/", 1)[-1]
    return dict(schema["components"]["schemas"][name])


async def test_every_route_is_documented_with_problem_errors(h: Harness) -> None:
    schema = (await h.client.get("/schema/openapi.json")).json()
    paths = {path.removeprefix(PREFIX): item for path, item in schema["paths"].items() if path.startswith(PREFIX)}
    assert set(paths) == set(ROUTES)
    for path, methods in ROUTES.items():
        assert set(paths[path]) == set(methods), path
        for method, success in methods.items():
            responses = paths[path][method]["responses"]
            assert success in responses, (path, method)
            for status in ("400", "401", "422", "500"):
                content = responses[status]["content"]
                assert list(content) == ["application/problem+json"], (path, method, status)
                assert content["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
            assert paths[path][method]["tags"] == ["registry"]

    problem = schema["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance", "code", "trace_id"} <= set(problem["required"])


async def test_request_schemas_carry_the_seed_fields_and_constraints(h: Harness) -> None:
    schema = (await h.client.get("/schema/openapi.json")).json()
    register = schema["paths"][f"{PREFIX}/registry/register"]["post"]["requestBody"]["content"]["application/json"]
    body = resolve(schema, register["schema"])
    assert len(body["properties"]) == 13
    assert body["properties"]["slug"]["pattern"] == "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
    assert body["properties"]["slug"]["maxLength"] == 63
    beat = schema["paths"][f"{PREFIX}/registry/heartbeat"]["post"]["requestBody"]["content"]["application/json"]
    assert len(resolve(schema, beat["schema"])["properties"]) == 9
    answer = schema["paths"][f"{PREFIX}/registry/heartbeat"]["post"]["responses"]["200"]["content"]
    envelope = resolve(schema, answer["application/json"]["schema"])
    assert set(envelope["properties"]) == {"data", "meta"}
    data = resolve(schema, envelope["properties"]["data"])
    assert set(data["properties"]) == {
        "slug",
        "status",
        "acknowledged_at",
        "next_heartbeat_due_at",
        "failure_count",
        "version_changed",
    }


async def test_config_controls_tags_and_schema_visibility(make_harness: Any) -> None:
    hidden = await make_harness(include_in_schema=False)
    schema = (await hidden.client.get("/schema/openapi.json")).json()
    assert not [path for path in schema.get("paths", {}) if path.startswith(PREFIX)]
