"""A host app with webhooks on, served by uvicorn in a process of its own, for the durability tests.

``python -m tests.webhooks.http_app PORT``: every setting comes from ``REGISTRY_*`` variables, as in a deployment.
"""

from __future__ import annotations

import os
import sys

import uvicorn
from litestar import Litestar, get

from litestar_registry import RegistryConfig, RegistryPlugin


@get("/healthz", sync_to_thread=False)
def healthz() -> dict[str, int]:
    """Up, and which process answers."""
    return {"pid": os.getpid()}


def create_app() -> Litestar:
    """The app, configured from the environment."""
    return Litestar(route_handlers=[healthz], plugins=[RegistryPlugin(RegistryConfig.from_env())])


if __name__ == "__main__":
    uvicorn.run(create_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
