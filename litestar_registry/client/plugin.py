"""``RegistryClientPlugin``: any Litestar app announces itself to a registry elsewhere and keeps itself registered."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import httpx
from litestar.plugins import InitPlugin

from litestar_registry.client.client import RegistryClient
from litestar_registry.client.config import RegistryClientConfig
from litestar_registry.client.keepalive import KeepAlive, KeepAliveTarget
from litestar_registry.client.models import Registration, TtlRegistration, TtlServiceInfo
from litestar_registry.client.targets import RegistryDialectTarget, TtlDialectTarget

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.config.app import AppConfig

__all__ = ("RegistryClientPlugin", "wait_until_serving")

logger = logging.getLogger("litestar_registry.client")


async def wait_until_serving(url: str, within: float) -> bool:
    """Poll ``url`` until it answers with a status below 500; ``False`` when ``within`` seconds pass first.

    Under uvicorn the app's lifespan starts before the socket listens: this is how a task started in the lifespan
    learns that the app now serves.
    """
    deadline = time.monotonic() + within
    pause = 0.05
    async with httpx.AsyncClient(timeout=1.0) as http:
        while True:
            try:
                if (await http.get(url)).status_code < 500:
                    return True
            except httpx.HTTPError:
                pass
            if time.monotonic() + pause > deadline:
                return False
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)


class RegistryClientPlugin(InitPlugin):
    """Registers the host app once it serves, keeps it alive, and deregisters it on graceful shutdown.

    Without a config, every setting comes from ``REGISTRY_CLIENT_*`` variables. While the app runs,
    :attr:`keepalive` tells how the registration stands.
    """

    __slots__ = ("client", "config", "keepalive")

    def __init__(self, config: RegistryClientConfig | None = None) -> None:
        self.config = config if config is not None else RegistryClientConfig.from_env()
        self.client: RegistryClient | None = None
        """The registry client, while the app runs."""
        self.keepalive: KeepAlive | None = None
        """The keepalive, while the app runs."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Hook the announcement into the app's lifespan (nothing when ``enabled`` is off)."""
        if self.config.enabled:
            app_config.lifespan.append(self.lifespan)
        else:
            logger.info("litestar-registry client: disabled; the app is not announced")
        return app_config

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        """Start the keepalive (it waits for the app to serve), then stop it and deregister at shutdown."""
        config = self.config
        client = RegistryClient(
            config.url,
            token=config.token,
            service_key=config.service_key,
            registry_path=config.registry_path,
            ttl_path=config.ttl_path,
            timeout=config.timeout_seconds,
        )
        keepalive = KeepAlive(
            self.target(client),
            ttl_seconds=config.ttl_seconds or 30.0,
            ready=self._ready,
            on_state=config.on_state,
            backoff_base_seconds=config.backoff_base_seconds,
            deregister_on_stop=config.deregister_on_shutdown,
            name=config.slug,
        )
        self.client, self.keepalive = client, keepalive
        keepalive.start()
        try:
            yield
        finally:
            try:
                await keepalive.stop(deregister_within=min(config.timeout_seconds, 5.0))
            finally:
                await client.aclose()

    def target(self, client: RegistryClient) -> KeepAliveTarget:
        """The service as the configured dialect registers it."""
        config = self.config
        if config.dialect == "ttl":
            info = TtlServiceInfo(
                id=config.slug,
                display_name=config.name or config.slug,
                version=config.version,
                description=config.description,
                model_metadata=dict(config.model_metadata),
            )
            registration = TtlRegistration(url=config.base_url or "", info=info, ttl_seconds=config.ttl_seconds)
            return TtlDialectTarget(client, registration)
        return RegistryDialectTarget(
            client,
            Registration(
                slug=config.slug,
                name=config.name or config.slug,
                version=config.version,
                description=config.description,
                base_url=config.base_url,
                health_url=config.health_url,
                documentation_url=config.documentation_url,
                endpoints=list(config.endpoints),
                capabilities=list(config.capabilities),
                tags=list(config.tags),
                metadata=dict(config.metadata),
                owner=config.owner,
                ttl_seconds=config.ttl_seconds,
            ),
            health=config.health,
            instance_id=config.instance_id,
        )

    async def _ready(self) -> None:
        url = self.config.probe_url
        if url is None:
            await asyncio.sleep(0)  # let the server finish starting after the lifespan
            return
        if not await wait_until_serving(url, self.config.ready_timeout_seconds):
            logger.warning(
                "%s: %s did not answer within %g s; registering anyway",
                self.config.slug,
                url,
                self.config.ready_timeout_seconds,
            )
