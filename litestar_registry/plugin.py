"""``RegistryPlugin``: mounts the registry into a host Litestar app without touching the host's own setup."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from litestar.plugins import CLIPlugin, InitPlugin

from litestar_registry.api.admin import AdminController
from litestar_registry.api.dependencies import bind, registry_dependencies
from litestar_registry.api.discovery import EntrypointController
from litestar_registry.api.feed import FeedController, FeedSettings, feed_dependencies
from litestar_registry.api.openapi import document_registry
from litestar_registry.api.provisioning import document_provisioning, provisioning_router
from litestar_registry.api.registry_dialect import RegistryController
from litestar_registry.api.routers import registry_router
from litestar_registry.api.ttl_dialect import TtlSettings, ttl_router
from litestar_registry.api.webhooks import webhooks_router
from litestar_registry.background import Sweeper
from litestar_registry.config import RegistryConfig, RegistryConfigurationError
from litestar_registry.core.auth import Authenticator, KeyAuthenticator
from litestar_registry.core.feed import FeedHub
from litestar_registry.core.registry import Registry, RegistryPolicy
from litestar_registry.durable import DurableExecution
from litestar_registry.provisioning.errors import DefinitionError
from litestar_registry.provisioning.instances import ReservingRegistry
from litestar_registry.provisioning.service import ProvisioningService
from litestar_registry.store import StoreConfigurationError, create_store, mask_url
from litestar_registry.wakeup import ChannelsWakeup, wakeup_url
from litestar_registry.webhooks.service import WebhookService

if TYPE_CHECKING:
    from click import Group
    from litestar import Litestar
    from litestar.config.app import AppConfig

    from litestar_registry.core.ports import ServiceStore

__all__ = ("RegistryPlugin", "registry_policy")

logger = logging.getLogger("litestar_registry")


class RegistryPlugin(InitPlugin, CLIPlugin):
    """Adds the service registry under ``config.path``, its store to the app lifespan, and ``litestar registry``."""

    __slots__ = (
        "_sweeper",
        "authenticator",
        "config",
        "durable",
        "feed",
        "provisioning",
        "registry",
        "store",
        "webhooks",
    )

    def __init__(self, config: RegistryConfig | None = None) -> None:
        self.config = config if config is not None else RegistryConfig.from_env()
        self.store: ServiceStore = self._build_store()
        self.authenticator: Authenticator = self.config.authenticator or KeyAuthenticator(
            self.config.service_keys,
            self.config.admin_keys,
            tenant_keys=self.config.tenant_keys,
            dev_mode=self.config.dev_mode,
        )
        checks = [self.config.dependents_check] if self.config.dependents_check else []
        # With DBOS (provisioning, webhooks), the instances' own registrations (registry-executor-...) are reserved.
        kind = ReservingRegistry if self.config.provisioning or self.config.webhooks else Registry
        self.registry = kind(
            self.store, registry_policy(self.config), clock=self.config.clock, dependents_checks=checks
        )
        self.durable = DurableExecution(self.config, self.registry)
        self.webhooks = WebhookService(self.config, self.registry, self.store, self.durable)
        try:
            self.provisioning = ProvisioningService(self.config, self.registry, self.store, self.durable)
        except DefinitionError as exc:
            raise RegistryConfigurationError([f"RegistryConfig.provisioning_definitions: {exc.detail}"]) from None
        if self.config.provisioning:
            self.registry.dependents_checks.append(self.provisioning.dependents)
        self.feed = self._build_feed()
        self.registry.on_events = self._on_events
        self._sweeper = Sweeper(self.registry, self.config.sweep_interval_seconds, listeners=[self.durable.on_sweep])

    async def _on_events(self) -> None:
        """This process appended to the change log: wake the feed's watchers (and the other instances) and the relay."""
        self.webhooks.wake()
        await self.feed.notify()

    def _build_store(self) -> ServiceStore:
        config = self.config
        if config.store is not None:
            return config.store
        try:
            return create_store(
                config.store_url,
                create_schema=config.create_schema,
                sqlalchemy_config=config.sqlalchemy_config,
                pool_size=config.store_pool_size,
            )
        except StoreConfigurationError as exc:
            raise RegistryConfigurationError([f"{self._store_setting()}: {exc}"]) from None

    def _build_feed(self) -> FeedHub:
        """The process's one change-feed hub, woken through the channels URL if there is one (else it polls)."""
        url = wakeup_url(self.config, self.store)
        wakeup = ChannelsWakeup(url) if url is not None else None
        return FeedHub(self.store, poll_interval=self.config.feed_poll_interval_seconds, wakeup=wakeup)

    def _store_setting(self) -> str:
        """The setting that chose the store, as messages name it (a URL's password masked)."""
        config = self.config
        if config.store is not None:
            return f"RegistryConfig.store ({type(config.store).__name__})"
        if config.sqlalchemy_config is not None:
            url = getattr(config.sqlalchemy_config, "connection_string", None)
            return "RegistryConfig.sqlalchemy_config" + (f" ({mask_url(url)})" if url else " (the host's engine)")
        return f"REGISTRY_STORE_URL={mask_url(config.store_url)}"

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Mount the registry's Routers with their own dependencies and error handlers; hook the store's lifespan.

        The registry dialect and provisioning go under ``path``, the TTL dialect under ``ttl_path`` (when set).
        """
        config = self.config
        app_config.route_handlers.append(
            registry_router(
                path=config.path,
                route_handlers=[
                    bind(RegistryController, registry=self.registry),
                    FeedController,
                    EntrypointController,
                    AdminController,
                ],
                dependencies=registry_dependencies(self.registry, self.authenticator, public_reads=config.public_reads)
                | feed_dependencies(self.feed, self._feed_settings()),
                guards=config.guards,
                tags=config.tags,
                include_in_schema=config.include_in_schema,
                max_body_bytes=config.max_body_bytes,
            )
        )
        app_config.route_handlers.append(
            provisioning_router(
                path=config.path,
                registry=self.registry,
                service=self.provisioning,
                authenticator=self.authenticator,
                guards=list(config.guards),
                tags=[*config.tags, "provisioning"],
                # Without provisioning the routes only answer 501, so the document does not offer them.
                include_in_schema=config.include_in_schema and self.provisioning.unavailable is None,
                max_body_bytes=config.max_body_bytes,
            )
        )
        app_config.route_handlers.append(
            webhooks_router(
                path=config.path,
                service=self.webhooks,
                authenticator=self.authenticator,
                guards=list(config.guards),
                tags=[*config.tags, "webhooks"],
                include_in_schema=config.include_in_schema and self.webhooks.unavailable is None,
                max_body_bytes=config.max_body_bytes,
            )
        )
        if config.ttl_path:
            settings = TtlSettings(
                path=config.ttl_path,
                ttl_seconds=config.ttl_seconds or config.default_ttl_seconds,
                expiry_windows=config.ttl_expiry_windows,
                account=config.ttl_account,
                key=config.ttl_registration_key,
                open=config.ttl_open,
            )
            app_config.route_handlers.append(
                ttl_router(
                    self.registry,
                    settings,
                    include_in_schema=config.include_in_schema,
                    tags=[*config.tags, "ttl"],
                    max_body_bytes=config.max_body_bytes,
                    guards=list(config.guards),
                    feed=feed_dependencies(self.feed, self._feed_settings()),
                )
            )
        document_registry(
            app_config, public_reads=config.public_reads, ttl_bounds=(config.min_ttl_seconds, config.max_ttl_seconds)
        )
        if self.provisioning.unavailable is None:
            document_provisioning(app_config)
        app_config.lifespan.append(self.lifespan)
        return app_config

    def _feed_settings(self) -> FeedSettings:
        config = self.config
        return FeedSettings(
            ping_interval=config.feed_ping_interval_seconds,
            max_wait=config.feed_max_wait_seconds,
            stream_lifetime=config.feed_stream_max_seconds,
        )

    def _warn_about_openings(self) -> None:
        """Log, at every start, each way in which this registry is open or unusable: nobody should miss one."""
        config = self.config
        if config.dev_mode and config.authenticator is None:
            logger.warning(
                "litestar-registry: DEV MODE IS ON (REGISTRY_DEV_MODE): any caller may act as any account, admin "
                "included, by sending X-Dev-Account and X-Dev-Role headers. Never run this in production."
            )
        elif config.dev_mode:
            logger.warning("litestar-registry: REGISTRY_DEV_MODE has no effect: a custom authenticator is configured")
        elif config.authenticator is None and not (config.service_keys or config.admin_keys):
            logger.warning(
                "litestar-registry: no service or admin keys configured; every registry write answers 401. Set "
                "REGISTRY_SERVICE_KEYS and REGISTRY_ADMIN_KEYS (account=key,...)"
            )
        if config.provisioning and config.authenticator is None and not config.tenant_keys and not config.dev_mode:
            logger.warning(
                "litestar-registry: provisioning is on but no tenant keys are configured; its routes answer 401 (403 "
                "to service and admin keys). Set REGISTRY_TENANT_KEYS (tenant=key,...)"
            )
        if config.ttl_path and config.ttl_open:
            logger.warning(
                "litestar-registry: the TTL dialect at %s is open (REGISTRY_TTL_OPEN): anyone who reaches it may "
                "register, ping and delete services",
                config.ttl_path,
            )
        elif config.ttl_path and config.ttl_registration_key is None:
            logger.warning(
                "litestar-registry: the TTL dialect at %s has no key, so its writes answer 401. Set "
                "REGISTRY_TTL_REGISTRATION_KEY (ttl_registration_key) to require it in X-Service-Key, "
                "REGISTRY_TTL_OPEN=true (ttl_open=True) to let anyone write, or REGISTRY_TTL_PATH= (empty) to leave "
                "the dialect out",
                config.ttl_path,
            )

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        """Open the store (creating the schema when configured) and provisioning, run the sweeper; close in reverse.

        A store that does not open stops startup with a :class:`RegistryConfigurationError` naming its setting, the
        password masked, also logged as one ERROR line (the underlying error is logged at DEBUG level).
        """
        self._warn_about_openings()
        try:
            await self.store.open()
        except Exception as exc:
            # The server logs the traceback of a failed startup; this line says what to fix before it does.
            error = RegistryConfigurationError(
                [f"{self._store_setting()}: the store did not open: {self._reason(exc)}"]
            )
            logger.debug("litestar-registry: the store did not open", exc_info=True)
            logger.error("%s", error)
            raise error from None
        logger.info("litestar-registry: store %s, from %s", type(self.store).__name__, self._store_setting())
        wakeup = self.feed.wakeup
        logger.debug(  # INFO stays one line, naming the store
            "litestar-registry: change feed %s",
            f"woken across instances through {mask_url(wakeup.url)}"
            if wakeup is not None
            else f"polls the change log every {self.config.feed_poll_interval_seconds:g} s while watched (no channels "
            "for this store, or REGISTRY_FEED_CHANNELS=false: other instances' changes arrive at the next poll)",
        )
        try:
            # Webhooks activate their engine before provisioning launches DBOS (launching recovers both kinds).
            await self.webhooks.prepare()
            await self.provisioning.open()
            await self.webhooks.open()
            await self.durable.join()
            try:
                await self.feed.start()
                if self.config.sweeper_enabled:
                    self._sweeper.start()
                yield
            finally:
                await self._sweeper.stop()
                await self.feed.stop()
        finally:
            try:
                await self.webhooks.close()
                await self.provisioning.close()
                await self.durable.close()
            finally:
                await self.store.close()

    def _reason(self, exc: Exception) -> str:
        """The first line of ``exc``, with the password of the store's URL masked should the message hold it."""
        text = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
        config = self.config
        url = getattr(config.sqlalchemy_config, "connection_string", None) or (
            config.store_url if config.store is None and config.sqlalchemy_config is None else None
        )
        try:
            password = urlsplit(url).password if url else None
        except ValueError:
            password = None
        return text.replace(password, "***") if password else text

    def on_cli_init(self, cli: Group) -> None:
        """Add the ``litestar registry`` command group."""
        from litestar_registry.cli import registry_group

        cli.add_command(registry_group)


def registry_policy(config: RegistryConfig) -> RegistryPolicy:
    """The core's rules as ``config`` sets them: the one place a policy is built, so defaults live in the config only.

    Services registered through the TTL dialect are approved at once: its account joins the auto-approved ones.
    """
    return RegistryPolicy(
        default_ttl_seconds=config.default_ttl_seconds,
        min_ttl_seconds=config.min_ttl_seconds,
        max_ttl_seconds=config.max_ttl_seconds,
        expiry_windows=config.expiry_windows,
        auto_approve_all=config.auto_approve_all,
        auto_approve_accounts=config.auto_approve_accounts | ({config.ttl_account} if config.ttl_path else set()),
        auto_approve_slugs=config.auto_approve_slugs,
        keep_deregistered=config.keep_deregistered,
        sweep_batch_size=config.sweep_batch_size,
        default_page_size=config.default_page_size,
        max_page_size=config.max_page_size,
        history_limit=config.history_limit,
        events_retention_seconds=config.events_retention_seconds,
        events_retention_count=config.events_retention_count,
    )
