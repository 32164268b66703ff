"""The example host app: its own route (``/healthz``), plus the registry mounted under ``/api/v1``.

Every ``REGISTRY_*`` variable applies (see the docs' configuration table). Without any, the example runs in dev mode
with one demo key so that the curl lines in the docs work as they are; a real deployment sets its own keys.
"""

from __future__ import annotations

import os

from litestar import Litestar, get
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin

from litestar_registry import RegistryConfig, RegistryPlugin

DEMO_KEYS = {
    "service_keys": {"demo-service-key": "demo"},
    "admin_keys": {"demo-admin-key": "admin"},
    "auto_approve_accounts": frozenset({"demo"}),
}


def registry_config() -> RegistryConfig:
    """Settings from the environment; demo keys only when the environment names no keys at all."""
    demo = not any(name in os.environ for name in ("REGISTRY_SERVICE_KEYS", "REGISTRY_ADMIN_KEYS"))
    return RegistryConfig.from_env(path="/api/v1", **(DEMO_KEYS if demo else {}))


@get("/healthz", tags=["host"], sync_to_thread=False)
def healthz() -> dict[str, str]:
    """The host's own route, untouched by the plugin."""
    return {"status": "ok"}


def create_app() -> Litestar:
    """Build the example app."""
    return Litestar(
        route_handlers=[healthz],
        plugins=[RegistryPlugin(registry_config())],
        openapi_config=OpenAPIConfig(
            title="litestar-registry example",
            version="0.1.0",
            path="/",
            render_plugins=[ScalarRenderPlugin(path="/docs"), SwaggerRenderPlugin(path="/swagger")],
        ),
    )


app = create_app()
