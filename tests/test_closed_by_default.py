"""Closed by default: no write on any route of either dialect without a credential, unless the host opens it by name.

Routes are read from the app itself, so a write route added later is covered without touching these tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.routes import HTTPRoute

from litestar_registry import RegistryConfig, RegistryPlugin
from litestar_registry.config import RegistryConfigurationError
from tests.clients import serve

SERVICE_KEY = "key-of-team-a-0123456789"
ADMIN_KEY = "key-of-ops-0123456789"
TTL_KEY = "key-of-ttl-clients-0123"
KEYED = {"service_keys": {"team-a": SERVICE_KEY}, "admin_keys": {"ops": ADMIN_KEY}}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
TTL = "/v2/services"
REGISTRATION = {
    "url": "http://evil.example:8080",
    "info": {"id": "billing-api", "display_name": "Billing", "model_metadata": {"author": "mallory"}},
}


def plugin_routes(app: Litestar, config: RegistryConfig) -> Iterator[tuple[str, str]]:
    """``(method, concrete path)`` for every route the plugin mounted, path parameters filled in with a slug."""
    prefixes = tuple(prefix for prefix in (config.path, config.ttl_path) if prefix)
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path.startswith(prefixes):
            path = re.sub(r"\{[^}]+\}", "billing-api", route.path_format)
            for method in sorted(route.methods - {"OPTIONS", "HEAD"}):
                yield method, path


def write_routes(app: Litestar, config: RegistryConfig) -> list[tuple[str, str]]:
    routes = [(method, path) for method, path in plugin_routes(app, config) if method in WRITES]
    # Never vacuous: both dialects' registration routes are among them.
    assert ("POST", f"{config.path}/registry/register") in routes
    assert ("POST", f"{TTL}/$register") in routes
    return routes


def registry_config(**settings: Any) -> RegistryConfig:
    return RegistryConfig(**{"store_url": "memory://", "sweeper_enabled": False, **settings})


@pytest.mark.parametrize("settings", [{}, KEYED], ids=["no keys at all", "service and admin keys, no TTL key"])
async def test_every_write_route_of_both_dialects_refuses_an_anonymous_caller(settings: dict[str, Any]) -> None:
    config = registry_config(**settings)
    plugin = RegistryPlugin(config)
    app = Litestar(plugins=[plugin])
    async with serve(app) as client:
        for method, path in write_routes(app, config):
            response = await client.request(method, path, json=REGISTRATION)
            # Provisioning and webhooks are off by default: their routes answer 501 to everyone (tests/provisioning
            # and tests/webhooks cover them on).
            off = (f"{config.path}/provisioning/", f"{config.path}/admin/webhooks/")
            expected = 501 if path.startswith(off) else 401
            assert response.status_code == expected, (method, path, response.text)
            if path.startswith(TTL):
                assert set(response.json()) == {"detail"}, (method, path)  # the TTL dialect's own error shape
            else:
                assert response.headers["content-type"].startswith("application/problem+json"), (method, path)
        assert (await client.get(TTL)).json()["count"] == 0
        assert await plugin.store.get("billing-api") is None


async def test_the_ttl_dialect_takes_its_key_or_an_explicit_opening() -> None:
    keyed = registry_config(**KEYED, ttl_registration_key=TTL_KEY)
    async with serve(Litestar(plugins=[RegistryPlugin(keyed)])) as client:
        missing = await client.post(f"{TTL}/$register", json=REGISTRATION)
        assert missing.status_code == 422  # seed 004: a missing key is a missing field
        wrong = await client.post(f"{TTL}/$register", json=REGISTRATION, headers={"X-Service-Key": ADMIN_KEY})
        assert wrong.status_code == 401
        good = await client.post(f"{TTL}/$register", json=REGISTRATION, headers={"X-Service-Key": TTL_KEY})
        assert good.status_code == 200, good.text

    opened = registry_config(ttl_open=True)
    async with serve(Litestar(plugins=[RegistryPlugin(opened)])) as client:
        assert (await client.post(f"{TTL}/$register", json=REGISTRATION)).status_code == 200
        assert (await client.delete(f"{TTL}/billing-api")).status_code == 204
        assert (await client.post(f"{opened.path}/registry/register", json={})).status_code == 401  # only the TTL one


def test_a_key_and_an_opening_together_are_refused() -> None:
    with pytest.raises(RegistryConfigurationError, match="REGISTRY_TTL_OPEN") as caught:
        RegistryConfig.from_env({"REGISTRY_TTL_OPEN": "true", "REGISTRY_TTL_REGISTRATION_KEY": TTL_KEY})
    assert TTL_KEY not in str(caught.value)


def require_host_pass(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if connection.headers.get("x-host-pass") != "yes":
        raise PermissionDeniedException("the host's guard refuses")


async def test_the_hosts_guards_run_on_every_route_of_both_dialects() -> None:
    config = registry_config(**KEYED, ttl_registration_key=TTL_KEY, public_reads=True, guards=[require_host_pass])
    app = Litestar(plugins=[RegistryPlugin(config)])
    credentials = {"Authorization": f"Bearer {ADMIN_KEY}", "X-Service-Key": TTL_KEY}
    async with serve(app) as client:
        routes = list(plugin_routes(app, config))
        assert ("GET", TTL) in routes
        for method, path in routes:
            response = await client.request(method, path, json=REGISTRATION, headers=credentials)
            assert response.status_code == 403, (method, path, response.text)
            assert "the host's guard refuses" in response.text
        allowed = {**credentials, "X-Host-Pass": "yes"}
        assert (await client.post(f"{TTL}/$register", json=REGISTRATION, headers=allowed)).status_code == 200
        assert (await client.get(TTL, headers=allowed)).json()["count"] == 1


def quiet_app(config: RegistryConfig) -> Litestar:
    """An app that leaves logging as it is: Litestar's default logging config would replace the handler of caplog."""
    return Litestar(plugins=[RegistryPlugin(config)], logging_config=None)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "litestar_registry" and r.levelname == "WARNING"]


async def test_an_unkeyed_ttl_dialect_says_at_startup_how_to_key_or_open_it(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="litestar_registry"):
        async with serve(quiet_app(registry_config(**KEYED))):
            pass
    [warning] = warnings_of(caplog)
    assert f"TTL dialect at {TTL} has no key, so its writes answer 401" in warning
    assert "REGISTRY_TTL_REGISTRATION_KEY" in warning
    assert "REGISTRY_TTL_OPEN=true" in warning

    caplog.clear()
    with caplog.at_level("WARNING", logger="litestar_registry"):
        async with serve(quiet_app(registry_config(**KEYED, ttl_open=True))):
            pass
    [warning] = warnings_of(caplog)
    assert f"TTL dialect at {TTL} is open (REGISTRY_TTL_OPEN)" in warning

    caplog.clear()
    with caplog.at_level("WARNING", logger="litestar_registry"):
        keyed = registry_config(**KEYED, ttl_registration_key=TTL_KEY)
        async with serve(quiet_app(keyed)):
            pass
    assert warnings_of(caplog) == []  # keyed everywhere: nothing to say


async def test_dev_mode_warns_loudly_at_every_start(caplog: pytest.LogCaptureFixture) -> None:
    app = quiet_app(registry_config(dev_mode=True, ttl_path=""))
    with caplog.at_level("WARNING", logger="litestar_registry"):
        for _ in range(2):
            async with serve(app) as client:
                dev = {"X-Dev-Account": "ops", "X-Dev-Role": "admin"}
                assert (await client.get("/api/v1/registry/services", headers=dev)).status_code == 200
    assert len(warnings_of(caplog)) == 2
    for warning in warnings_of(caplog):
        assert "DEV MODE IS ON (REGISTRY_DEV_MODE)" in warning
        assert "Never run this in production" in warning
