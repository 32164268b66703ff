"""The OpenAPI document lists every registry route with its request, response and problem schemas."""

from __future__ import annotations

from typing import Any

from litestar_registry.core.validation import SLUG_PATTERN
from tests.api.conftest import A, Harness, MakeApp, registration
from tests.api.test_registry_routes import REGISTER, problem


class _AnyString(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)

    __hash__ = str.__hash__


ANY_STRING = _AnyString()

PREFIX = "/api/v1"
ROUTES = {
    "/registry/register": {"post": "201", "put": "200", "delete": "204"},
    "/registry/heartbeat": {"post": "200"},
    "/registry/services": {"get": "200"},
    "/registry/services/{slug}": {"get": "200"},
    "/registry/services/{slug}/versions": {"get": "200"},
    "/registry/stream": {"get": "200"},
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


ANY_KEY = [{"RegistryServiceKey": []}, {"RegistryAdminKey": []}]
TTL = "/v2/services"
TTL_ROUTES = {
    "/v2/services/$register": {"post": (401, 403, 409, 413)},
    "/v2/services/{id}/$ping": {"put": (401, 403, 404, 409)},
    "/v2/services": {"get": ()},
    "/v2/services/{id}": {"get": (404,), "delete": (401, 403, 404, 409)},
}


async def document(h: Harness) -> dict[str, Any]:
    response = await h.client.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_security_schemes_and_the_key_each_route_takes(make_harness: MakeApp) -> None:
    h = await make_harness(ttl_registration_key="secret-ttl-key-0123")
    schema = await document(h)
    assert schema["components"]["securitySchemes"] == {
        "RegistryServiceKey": {"type": "http", "scheme": "bearer", "description": ANY_STRING},
        "RegistryAdminKey": {"type": "http", "scheme": "bearer", "description": ANY_STRING},
        "RegistryTtlKey": {"type": "apiKey", "name": "X-Service-Key", "in": "header", "description": ANY_STRING},
    }
    for path, methods in ROUTES.items():
        for method in methods:
            expected = [{"RegistryAdminKey": []}] if path.startswith("/admin/") else ANY_KEY
            assert schema["paths"][PREFIX + path][method]["security"] == expected, (method, path)
    for path, methods in TTL_ROUTES.items():
        for method in methods:
            expected = None if method == "get" else [{"RegistryTtlKey": []}]
            assert schema["paths"][path][method].get("security") == expected, (method, path)


async def test_open_reads_and_an_open_ttl_dialect_say_that_no_key_is_needed(make_harness: MakeApp) -> None:
    h = await make_harness(public_reads=True, ttl_open=True)
    paths = (await document(h))["paths"]
    assert paths[f"{PREFIX}/registry/services"]["get"]["security"] == [{}, *ANY_KEY]
    assert paths[f"{PREFIX}/entrypoints/{{slug}}"]["get"]["security"] == [{}, *ANY_KEY]
    assert paths[f"{PREFIX}/registry/register"]["post"]["security"] == ANY_KEY
    assert "security" not in paths[f"{TTL}/$register"]["post"]
    assert (await h.client.get(f"{PREFIX}/registry/services")).status_code == 200


async def test_the_ttl_dialect_documents_its_own_error_bodies(h: Harness) -> None:
    schema = await document(h)
    detail = resolve(schema, {"$ref": "#/components/schemas/Detail"})
    assert detail["required"] == ["detail"]
    for path, methods in TTL_ROUTES.items():
        for method, statuses in methods.items():
            responses = schema["paths"][path][method]["responses"]
            for status in {400, 422, 500, *statuses}:
                content = responses[str(status)]["content"]
                assert content == {"application/json": {"schema": {"$ref": "#/components/schemas/Detail"}}}
    assert [p["name"] for p in schema["paths"]["/v2/services/{id}"]["get"]["parameters"]] == ["id"]
    assert schema["paths"]["/v2/services/{id}"]["get"]["parameters"][0]["schema"]["pattern"] == SLUG_PATTERN


async def test_bodies_that_refuse_unknown_fields_say_so(h: Harness) -> None:
    schemas = (await document(h))["components"]["schemas"]
    for name in ("RegistrationRequest", "DeregistrationRequest", "HeartbeatRequest", "EntrypointIn", "OwnerIn"):
        assert schemas[name]["additionalProperties"] is False, name
    free_form = {"$ref": "#/components/schemas/RegistryJsonValue"}
    assert schemas["ServiceInfo"]["additionalProperties"] == free_form  # kept as sent, within what a store keeps
    assert schemas["RegistrationRequest"]["properties"]["metadata"]["additionalProperties"] == free_form
    assert "additionalProperties" not in schemas["RegisterRequest"]  # unknown top-level fields are ignored
    tags = schemas["RegistrationRequest"]["properties"]["tags"]
    assert (tags["maxItems"], tags["items"]["maxLength"], tags["items"]["pattern"]) == (100, 100, "^[^\\x00]*$")


async def test_bounds_come_from_the_configuration(make_harness: MakeApp) -> None:
    h = await make_harness(min_ttl_seconds=2, max_ttl_seconds=600, default_page_size=5, max_page_size=20)
    schema = await document(h)
    for name in ("RegistrationRequest", "RegisterRequest"):
        ttl = schema["components"]["schemas"][name]["properties"]["ttl_seconds"]
        assert (ttl["minimum"], ttl["maximum"]) == (2, 600), name
    for path in ("/registry/services", "/registry/services/{slug}/versions", "/entrypoints"):
        [limit] = [p for p in schema["paths"][PREFIX + path]["get"]["parameters"] if p["name"] == "limit"]
        assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 20), path
        url = PREFIX + path.replace("{slug}", "billing")
        await h.register() if path.endswith("versions") else None
        assert (await h.client.get(url, params={"limit": 20}, headers=A)).json()["meta"]["limit"] == 20
        assert (await h.client.get(url, headers=A)).json()["meta"]["limit"] == 5
        problem(await h.client.get(url, params={"limit": 21}, headers=A), 422, "invalid_input")
    problem(await h.client.post(REGISTER, json=registration("short", ttl_seconds=1), headers=A), 422, "invalid_input")


async def test_options_lists_every_method_of_the_path(h: Harness) -> None:
    paths = (await document(h))["paths"]
    for path, item in paths.items():
        if not path.startswith((f"{PREFIX}/registry/", f"{PREFIX}/entrypoints", f"{PREFIX}/admin/", TTL)):
            continue  # provisioning has its own tests
        concrete = path.replace("{slug}", "billing").replace("{id}", "my-model")
        response = await h.client.options(concrete)
        assert response.status_code == 204, (path, response.text)
        allowed = {method.strip() for method in response.headers["allow"].split(",")}
        assert allowed == {method.upper() for method in item} | {"OPTIONS"}, path
    assert (await h.client.options(f"{PREFIX}/registry/register")).headers["allow"] == "DELETE, OPTIONS, POST, PUT"


def test_apps_without_an_openapi_config_of_their_own_leave_litestars_default_as_it_was() -> None:
    from litestar import Litestar
    from litestar.app import DEFAULT_OPENAPI_CONFIG

    from litestar_registry import RegistryConfig, RegistryPlugin

    before = DEFAULT_OPENAPI_CONFIG.components
    for _ in range(2):
        app = Litestar(plugins=[RegistryPlugin(RegistryConfig(store_url="memory://", ttl_path=""))])
        assert app.openapi_config is not DEFAULT_OPENAPI_CONFIG
    assert DEFAULT_OPENAPI_CONFIG.components is before
