"""Without provisioning (off, or the ``workflows`` extra missing) every provisioning route answers 501, naming the
extra, before any credential or body is looked at; the registry itself works as before."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from litestar import Litestar

from litestar_registry import RegistryConfig, RegistryPlugin
from tests.clients import serve
from tests.provisioning.apps import ACME, PREFIX, problem, settings

WORKFLOW = f"{PREFIX}/workflows/00000000-0000-7000-8000-000000000000"
ROUTES = [
    ("POST", f"{PREFIX}/workflows", {"service_slug": "billing", "definition": "provision"}),
    ("GET", f"{PREFIX}/workflows", None),
    ("GET", WORKFLOW, None),
    ("GET", f"{PREFIX}/status/billing", None),
    ("POST", f"{WORKFLOW}/cancel", None),
    ("POST", f"{WORKFLOW}/retry", None),
    ("POST", f"{PREFIX}/callback", {"callback_token": "t", "status": "succeeded"}),
    ("POST", f"{PREFIX}/callback", {"not": "a callback"}),
]


async def every_route_answers_501(plugin: RegistryPlugin, expected: str) -> None:
    async with serve(Litestar(plugins=[plugin])) as client:
        document = (await client.get("/schema/openapi.json")).json()
        assert not [path for path in document["paths"] if "/provisioning/" in path]  # not offered, only explained
        assert "RegistryTenantKey" not in document["components"]["securitySchemes"]
        for method, path, body in ROUTES:
            for headers in ({}, ACME):
                response = await client.request(method, path, json=body, headers=headers)
                answer = problem(response, 501, "provisioning_unavailable")
                assert "litestar-registry[workflows]" in answer["detail"], (method, path)
                assert expected in answer["detail"]
        assert (await client.get("/api/v1/registry/services", headers=ACME)).status_code == 200


async def test_provisioning_off_answers_501_naming_the_setting_and_the_extra(tmp_path: Path) -> None:
    plugin = RegistryPlugin(RegistryConfig(**settings("sqlite", tmp_path, provisioning=False)))
    await every_route_answers_501(plugin, "REGISTRY_PROVISIONING=true")
    assert plugin.provisioning.engine is None


async def test_without_the_extra_answers_501_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dbos", None)  # as if `pip install litestar-registry` left the extra out
    plugin = RegistryPlugin(RegistryConfig(**settings("sqlite", tmp_path)))
    await every_route_answers_501(plugin, "pip install 'litestar-registry[workflows]'")
    assert not (tmp_path / "registry-dbos.sqlite").exists()  # DBOS never started
