"""The example host app: its own routes (``/healthz``, the demo provisioner), plus the registry under ``/api/v1`` and
``/v2/services``.

Every ``REGISTRY_*`` variable applies (see the docs' configuration table). When the environment names no keys, the
example uses demo keys, and runs provisioning and webhooks with a demo encryption key, so that the curl lines in the
docs work as they are; a real deployment sets its own.
"""

from __future__ import annotations

import gc
import os

from litestar import Litestar, get
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin

from example_app.provisioning import PROVISION, DemoProvisioner
from litestar_registry import RegistryConfig, RegistryPlugin

DEMO_SETTINGS = {
    "REGISTRY_SERVICE_KEYS": "demo=demo-service-key",
    "REGISTRY_ADMIN_KEYS": "admin=demo-admin-key-0000",
    "REGISTRY_AUTO_APPROVE_ACCOUNTS": "demo",
    "REGISTRY_TTL_REGISTRATION_KEY": "demo-ttl-key-0000",
    # Ten minutes instead of the library's 30 s: a person typing the walkthrough's commands would see every service
    # turn degraded between two of them.
    "REGISTRY_DEFAULT_TTL_SECONDS": "600",
    # Provisioning (docs/provisioning.md): two tenants, a demo encryption key, and loopback allowed, since the demo's
    # external service is this app itself on 127.0.0.1.
    "REGISTRY_TENANT_KEYS": "acme=demo-tenant-key-acme,globex=demo-tenant-key-globex",
    "REGISTRY_PROVISIONING": "true",
    "REGISTRY_PROVISIONING_KEYS": "WbLHCtMxGIoaRrEs1_8frevFv5XPcE1hVdRw8VhlbrY=",
    "REGISTRY_PROVISIONING_CALLBACK_BASE_URL": "http://127.0.0.1:8000",
    "REGISTRY_PROVISIONING_ALLOW_LOOPBACK": "true",
    # Webhooks (docs/webhooks.md): on, their secrets sealed with the provisioning key above, and loopback allowed so
    # that a subscriber on this machine (example_app/subscriber.py) can receive them.
    "REGISTRY_WEBHOOKS": "true",
    "REGISTRY_WEBHOOKS_ALLOW_LOOPBACK": "true",
}
"""Used only for variables the environment leaves unset, and only when it sets no keys at all."""


def registry_config() -> RegistryConfig:
    """Settings from the environment; the demo keys fill in only when the environment names no keys at all.

    ``REGISTRY_TTL_OPEN`` counts as naming one: opening the TTL dialect and keying it are exclusive.
    """
    keys = (
        "REGISTRY_SERVICE_KEYS",
        "REGISTRY_ADMIN_KEYS",
        "REGISTRY_TTL_REGISTRATION_KEY",
        "REGISTRY_TTL_OPEN",
        "REGISTRY_TENANT_KEYS",
        "REGISTRY_PROVISIONING_KEYS",
    )
    demo = {} if any(name in os.environ for name in keys) else DEMO_SETTINGS
    return RegistryConfig.from_env({**demo, **os.environ}, provisioning_definitions=[PROVISION])


@get("/healthz", tags=["host"], sync_to_thread=False)
def healthz() -> dict[str, str]:
    """The host's own route, untouched by the plugin."""
    return {"status": "ok"}


def freeze_what_startup_built() -> None:
    """Keep the objects that live as long as the app (modules, routes, engines) out of the garbage collector's scans.

    A full collection walks every tracked object: about 130,000 here once the app has started, 60 to 200 ms each time,
    a pause that a request in about a hundred waits behind. Frozen, they are never walked again, and a full collection
    takes about a millisecond. Run once, after the registry's lifespan has opened its store and engines.
    """
    gc.collect()
    gc.freeze()


def create_app() -> Litestar:
    """Build the example app."""
    return Litestar(
        route_handlers=[healthz, DemoProvisioner],
        on_startup=[freeze_what_startup_built],
        plugins=[RegistryPlugin(registry_config())],
        openapi_config=OpenAPIConfig(
            title="litestar-registry example",
            version="0.1.0",
            path="/",
            render_plugins=[ScalarRenderPlugin(path="/docs"), SwaggerRenderPlugin(path="/swagger")],
        ),
    )


app = create_app()
