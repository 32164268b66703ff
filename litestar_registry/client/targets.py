"""What a :class:`~litestar_registry.client.KeepAlive` drives: a service in the registry or the TTL dialect."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from litestar_registry.client.client import RegistryClient
from litestar_registry.client.errors import ProblemError, RegistryHTTPError
from litestar_registry.client.models import Health, HealthStatus, Heartbeat, Registration, TtlRegistration

__all__ = ("HealthSource", "RegistryDialectTarget", "TtlDialectTarget", "default_instance_id")

logger = logging.getLogger("litestar_registry.client")

HealthSource = Callable[[], Health | Awaitable[Health]]
"""The host's own health: a coroutine function (awaited) or a plain function (run in a worker thread, so that a slow
check never blocks the event loop)."""


def default_instance_id() -> str:
    """``host:pid``: tells two instances of one service apart in the registry's health reports."""
    return f"{socket.gethostname()}:{os.getpid()}"


class RegistryDialectTarget:
    """A service in the registry dialect: ``POST`` (``PUT`` while the slug is live), heartbeats with its health."""

    def __init__(
        self,
        client: RegistryClient,
        registration: Registration,
        *,
        health: HealthSource | None = None,
        instance_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.registration = registration
        self.health = health
        self.instance_id = instance_id or default_instance_id()
        self._clock = clock
        self._started = clock()
        self._ttl = registration.ttl_seconds or 30.0

    async def register(self) -> float:
        """``POST``; when the slug is still live (this service restarted within its TTL), ``PUT`` and a heartbeat.

        An unchanged ``PUT`` does not restart the contact clock; the heartbeat does, and reports health at once.
        """
        try:
            registered = await self.client.register(self.registration)
        except ProblemError as exc:
            if exc.status != 409 or exc.code != "service_exists":
                raise
            try:
                registered = await self.client.update(self.registration)
            except RegistryHTTPError as again:
                if not again.gone:  # expired between the two requests: it registers afresh now
                    raise
                registered = await self.client.register(self.registration)
            else:
                self._ttl = registered.ttl_seconds
                await self.contact()
        self._ttl = registered.ttl_seconds
        if not registered.approved:
            logger.warning("%s: registered, pending an admin's approval", self.registration.slug)
        return registered.ttl_seconds

    async def contact(self) -> None:
        """A heartbeat with what the host reports."""
        health = await self.health_report()
        await self.client.heartbeat(
            Heartbeat(
                slug=self.registration.slug,
                status=health.status,
                version=self.registration.version,
                uptime_seconds=round(max(0.0, self._clock() - self._started), 3),
                instance_id=self.instance_id,
                message=health.message,
                checks=health.checks,
                metrics=health.metrics,
                timestamp=datetime.now(UTC),
            )
        )

    async def deregister(self) -> None:
        """``DELETE``, saying why."""
        await self.client.deregister(self.registration.slug, reason="shutting down")

    async def health_report(self) -> Health:
        """The host's report, within a sixth of the TTL; a check that fails or hangs reports ``unhealthy``."""
        if self.health is None:
            return Health()
        source = self.health
        try:
            async with asyncio.timeout(max(self._ttl / 6, 0.2)):
                if inspect.iscoroutinefunction(source):
                    result = await source()
                else:
                    result = await asyncio.to_thread(source)
                    if inspect.isawaitable(result):
                        result = await result
        except TimeoutError:
            return Health(status=HealthStatus.UNHEALTHY, message="the health check did not answer in time")
        except Exception as exc:
            logger.warning("%s: the health check failed: %r", self.registration.slug, exc)
            return Health(status=HealthStatus.UNHEALTHY, message=f"the health check failed: {exc!r}"[:2_000])
        if not isinstance(result, Health):
            return Health(status=HealthStatus.UNHEALTHY, message=f"the health check returned {type(result).__name__}")
        return result


class TtlDialectTarget:
    """A service in the TTL dialect: ``$register`` (latest wins) and ``$ping``."""

    def __init__(self, client: RegistryClient, registration: TtlRegistration) -> None:
        self.client = client
        self.registration = registration

    async def register(self) -> float:
        """``$register``; returns the TTL granted."""
        return (await self.client.ttl.register(self.registration)).ttl_seconds

    async def contact(self) -> None:
        """``$ping``."""
        await self.client.ttl.ping(self.registration.info.id)

    async def deregister(self) -> None:
        """``DELETE``."""
        await self.client.ttl.deregister(self.registration.info.id)
