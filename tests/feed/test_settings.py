"""The feed's settings: from the environment, checked when the config is built, and which wake-ups they choose."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from litestar import Litestar

from litestar_registry import RegistryConfig, RegistryPlugin
from litestar_registry.config import RegistryConfigurationError
from litestar_registry.store import create_store
from litestar_registry.wakeup import wakeup_url
from tests.clients import serve


def test_the_feed_settings_come_from_the_environment() -> None:
    config = RegistryConfig.from_env(
        {
            "REGISTRY_STORE_URL": "memory://",
            "REGISTRY_FEED_CHANNELS": "false",
            "REGISTRY_FEED_CHANNELS_URL": "redis://cache:6379/2",
            "REGISTRY_FEED_POLL_INTERVAL_SECONDS": "0.5",
            "REGISTRY_FEED_PING_INTERVAL_SECONDS": "20",
            "REGISTRY_FEED_MAX_WAIT_SECONDS": "60",
            "REGISTRY_FEED_STREAM_MAX_SECONDS": "3600",
        }
    )
    assert (config.feed_channels, config.feed_channels_url) == (False, "redis://cache:6379/2")
    assert (config.feed_poll_interval_seconds, config.feed_ping_interval_seconds) == (0.5, 20.0)
    assert (config.feed_max_wait_seconds, config.feed_stream_max_seconds) == (60.0, 3600.0)
    assert RegistryConfig(store_url="memory://").feed_stream_max_seconds is None  # unset: streams last


def test_bad_feed_settings_stop_the_config_with_one_line_and_no_password() -> None:
    with pytest.raises(RegistryConfigurationError) as raised:
        RegistryConfig.from_env(
            {
                "REGISTRY_STORE_URL": "memory://",
                "REGISTRY_FEED_CHANNELS_URL": "mysql://app:hunter2@db/x",
                "REGISTRY_FEED_POLL_INTERVAL_SECONDS": "0",
                "REGISTRY_FEED_MAX_WAIT_SECONDS": "-1",
                "REGISTRY_FEED_STREAM_MAX_SECONDS": "inf",
            }
        )
    message = str(raised.value)
    assert "hunter2" not in message
    assert "REGISTRY_FEED_CHANNELS_URL (feed_channels_url): expected a redis://" in message
    assert "'mysql://app:***@db/x'" in message
    for name in ("FEED_POLL_INTERVAL_SECONDS", "FEED_MAX_WAIT_SECONDS", "FEED_STREAM_MAX_SECONDS"):
        assert f"REGISTRY_{name}" in message
    shown = dict(
        (variable, value)
        for variable, value, _ in RegistryConfig(
            store_url="memory://", feed_channels_url="redis://:hunter2@cache:6379/0"
        ).to_env()
    )
    assert shown["REGISTRY_FEED_CHANNELS_URL"] == "redis://:***@cache:6379/0"


def test_wakeups_travel_through_the_stores_server_unless_told_otherwise(tmp_path: Path) -> None:
    def url_for(**settings: object) -> str | None:
        config = RegistryConfig(**settings)  # type: ignore[arg-type]
        store = config.store or create_store(config.store_url)
        return wakeup_url(config, store)

    postgres = "postgresql+asyncpg://app:pw@db:5432/registry"
    redis = "redis://cache:6379/4"
    assert url_for(store_url=postgres) == postgres
    assert url_for(store_url=redis) == redis
    assert url_for(store_url="valkey://cache:6379/0") == "valkey://cache:6379/0"
    assert url_for(store_url=f"sqlite+aiosqlite:///{tmp_path / 'r.db'}") is None  # polling only
    assert url_for(store_url="memory://") is None
    assert url_for(store_url=postgres, feed_channels=False) is None
    assert url_for(store_url=f"sqlite+aiosqlite:///{tmp_path / 'r.db'}", feed_channels_url=redis) == redis
    assert url_for(store=create_store(redis)) == redis  # a store instance: its own URL


async def test_startup_says_at_debug_level_how_the_feed_is_woken(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    config = RegistryConfig(store_url=f"sqlite+aiosqlite:///{tmp_path / 'r.db'}", sweeper_enabled=False)
    with caplog.at_level(logging.DEBUG, logger="litestar_registry"):
        async with serve(Litestar(plugins=[RegistryPlugin(config)], logging_config=None)):
            pass
    assert "change feed polls the change log every 1 s while watched (no channels for this store" in caplog.text
