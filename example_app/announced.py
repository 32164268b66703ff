"""A second host app that announces itself to the example registry: ``python -m example_app.announced``.

It serves on http://127.0.0.1:8001 (``--port``/``--host`` to change) and, through ``RegistryClientPlugin``, registers
as ``announced-demo`` with the registry at http://127.0.0.1:8000 once it serves, heartbeats every third of its TTL with
the health its ``health`` function reports, and deregisters when stopped. ``GET /announcement`` shows how its
registration stands. Every ``REGISTRY_CLIENT_*`` variable applies; the demo values below fill in the ones the
environment leaves unset.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

import uvicorn
from litestar import Litestar, get

from litestar_registry.client import (
    Entrypoint,
    Health,
    HealthStatus,
    RegistryClientConfig,
    RegistryClientPlugin,
)

DEMO_SETTINGS = {
    "REGISTRY_CLIENT_URL": "http://127.0.0.1:8000",
    "REGISTRY_CLIENT_TOKEN": "demo-service-key",  # the example registry's demo account, auto-approved
    "REGISTRY_CLIENT_SERVICE_KEY": "demo-ttl-key-0000",  # used with REGISTRY_CLIENT_DIALECT=ttl
    "REGISTRY_CLIENT_SLUG": "announced-demo",
    "REGISTRY_CLIENT_NAME": "Announced demo",
    "REGISTRY_CLIENT_DESCRIPTION": "Says hello; registers and keeps alive by itself",
    "REGISTRY_CLIENT_CAPABILITIES": "greeting",
    "REGISTRY_CLIENT_TTL_SECONDS": "15",
}
"""Used only for variables the environment leaves unset."""

served = {"hello": 0}


def health() -> Health:
    """What every heartbeat reports: this app's own view of itself."""
    return Health(status=HealthStatus.HEALTHY, checks={"self": HealthStatus.HEALTHY}, metrics=dict(served))


@get("/healthz", sync_to_thread=False)
def healthz() -> dict[str, str]:
    """The app's health route; the plugin probes it before the first registration."""
    return {"status": "ok"}


@get("/hello", sync_to_thread=False)
def hello() -> dict[str, str]:
    """What the service offers."""
    served["hello"] += 1
    return {"message": "hello from announced-demo"}


def client_config(base_url: str, environ: dict[str, str] | None = None) -> RegistryClientConfig:
    """Settings from the environment, with the demo values and this app's own address filling in."""
    defaults = {
        **DEMO_SETTINGS,
        "REGISTRY_CLIENT_BASE_URL": base_url,
        "REGISTRY_CLIENT_HEALTH_URL": f"{base_url}/healthz",
    }
    return RegistryClientConfig.from_env(
        {**defaults, **(os.environ if environ is None else environ)},
        endpoints=[Entrypoint(name="hello", url=f"{base_url}/hello", method="GET")],
        health=health,
    )


def create_app(base_url: str = "http://127.0.0.1:8001") -> Litestar:
    """The announced app, reachable at ``base_url``."""
    plugin = RegistryClientPlugin(client_config(base_url))

    @get("/announcement", sync_to_thread=False)
    def announcement() -> dict[str, Any]:
        """How the registration stands (the keepalive's state)."""
        keepalive = plugin.keepalive
        if keepalive is None:
            return {"state": "off"}
        return {
            "slug": plugin.config.slug,
            "state": keepalive.state.value,
            "registrations": keepalive.registrations,
            "failures": keepalive.failures,
            "ttl_seconds": keepalive.ttl_seconds,
        }

    return Litestar(route_handlers=[healthz, hello, announcement], plugins=[plugin])


app = create_app()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    uvicorn.run(create_app(f"http://{args.host}:{args.port}"), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
