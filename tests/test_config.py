"""Every setting from code or from REGISTRY_* variables; bad values fail at startup with a clear message."""

from __future__ import annotations

import asyncio
from dataclasses import fields

import pytest
from litestar import Litestar
from litestar.exceptions import ImproperlyConfiguredException

from litestar_registry import RegistryConfig, RegistryPlugin


def test_environment_sets_every_kind_of_field() -> None:
    config = RegistryConfig.from_env(
        {
            "REGISTRY_PATH": "/registry-api",
            "REGISTRY_STORE_URL": "memory://",
            "REGISTRY_DEFAULT_TTL_SECONDS": "12.5",
            "REGISTRY_EXPIRY_WINDOWS": "5",
            "REGISTRY_PUBLIC_READS": "yes",
            "REGISTRY_DEV_MODE": "0",
            "REGISTRY_SERVICE_KEYS": "billing=k1-0123456789abcdef, search=k2-0123456789abcdef,"
            " billing=k3-0123456789abcdef",
            "REGISTRY_AUTO_APPROVE_SLUGS": "billing,search",
            "REGISTRY_TAGS": "registry, platform",
            "UNRELATED": "ignored",
        }
    )
    assert config.path == "/registry-api"
    assert config.store_url == "memory://"
    assert config.default_ttl_seconds == 12.5
    assert config.expiry_windows == 5
    assert (config.public_reads, config.dev_mode) == (True, False)
    assert config.service_keys == {
        "billing": ("k1-0123456789abcdef", "k3-0123456789abcdef"),
        "search": "k2-0123456789abcdef",
    }
    assert config.auto_approve_slugs == frozenset({"billing", "search"})
    assert config.tags == ("registry", "platform")


def test_code_wins_over_environment() -> None:
    config = RegistryConfig.from_env({"REGISTRY_PATH": "/env"}, path="/code")
    assert config.path == "/code"


def test_every_env_field_is_listed_for_the_docs() -> None:
    listed = {variable for variable, _, _ in RegistryConfig.environment_variables()}
    assert {"REGISTRY_STORE_URL", "REGISTRY_SERVICE_KEYS", "REGISTRY_SWEEP_INTERVAL_SECONDS"} <= listed
    assert all(variable.startswith("REGISTRY_") for variable in listed)


def test_only_settings_that_take_python_objects_lack_a_variable() -> None:
    with_variable = {name for _, name, _ in RegistryConfig.environment_variables()}
    code_only = {spec.name for spec in fields(RegistryConfig)} - with_variable
    assert code_only == {"store", "sqlalchemy_config", "guards", "authenticator", "dependents_check", "clock"}


@pytest.mark.parametrize(
    "environ",
    [
        {"REGISTRY_EXPIRY_WINDOWS": "three"},
        {"REGISTRY_PUBLIC_READS": "maybe"},
        {"REGISTRY_SERVICE_KEYS": "no-equals-sign"},
        {"REGISTRY_DEFAULT_TTL_SECONDS": "0"},
        {"REGISTRY_PATH": "no-slash"},
    ],
)
def test_bad_values_are_configuration_errors(environ: dict[str, str]) -> None:
    with pytest.raises(ImproperlyConfiguredException):
        RegistryConfig.from_env(environ)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mongodb://x", "no store speaks mongodb://"),
        ("sqlite:///registry.db", r"expected sqlite\+aiosqlite://"),
        ("postgres+asyncpg://app:pw@db/registry", "SQLAlchemy has no dialect 'postgres'"),
        ("sqlite+aiosqllite:///registry.db", "not 'aiosqllite'"),
    ],
)
def test_unusable_store_url_fails_at_startup_not_in_a_request(url: str, message: str) -> None:
    with pytest.raises(ImproperlyConfiguredException, match=message):
        Litestar(plugins=[RegistryPlugin(RegistryConfig(store_url=url))])


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", "valkey://127.0.0.1:1/0", "unix:///nowhere/redis.sock"])
def test_redis_url_builds_a_redis_store_without_connecting(url: str) -> None:
    from litestar_registry.store.redis import RedisServiceStore

    plugin = RegistryPlugin(RegistryConfig(store_url=url))  # nothing listens there: construction must not connect
    Litestar(plugins=[plugin])
    assert isinstance(plugin.store, RedisServiceStore)
    assert plugin.store.url == url


def test_plugin_reads_the_environment_when_given_no_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_STORE_URL", "memory://")
    monkeypatch.setenv("REGISTRY_PATH", "/from-env")
    plugin = RegistryPlugin()
    assert plugin.config.path == "/from-env"
    app = Litestar(plugins=[plugin])
    assert any(route.path.startswith("/from-env/registry") for route in app.routes)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"service_keys": {"billing": "short-key"}}, "shorter than 16"),
        ({"service_keys": {"billing": "same-key-0123456789"}, "admin_keys": {"ops": "same-key-0123456789"}}, "also"),
        ({"service_keys": {"a": "same-key-0123456789", "b": "same-key-0123456789"}}, "also"),
        ({"ttl_registration_key": "short-ttl-key"}, "REGISTRY_TTL_REGISTRATION_KEY"),
    ],
)
def test_bad_keys_stop_startup_with_the_key_masked(settings: dict[str, object], named: str) -> None:
    with pytest.raises(ImproperlyConfiguredException) as caught:
        RegistryConfig(**settings)  # type: ignore[arg-type]
    message = str(caught.value)
    assert named in message
    assert "short-key" not in message
    assert "same-key-0123456789" not in message
    assert "short-ttl-key" not in message


def test_a_malformed_key_variable_is_not_echoed() -> None:
    with pytest.raises(ImproperlyConfiguredException) as caught:
        RegistryConfig.from_env({"REGISTRY_SERVICE_KEYS": "billing:secret-key-0123456789"})
    assert "REGISTRY_SERVICE_KEYS" in str(caught.value)
    assert "secret-key-0123456789" not in str(caught.value)


def test_several_keys_per_account_all_authenticate() -> None:
    from litestar_registry.core.auth import KeyAuthenticator

    auth = KeyAuthenticator({"billing": ["old-key-0123456789", "new-key-0123456789"]})
    for key in ("old-key-0123456789", "new-key-0123456789"):
        principal = asyncio.run(auth.authenticate({"authorization": f"Bearer {key}"}))
        assert principal is not None
        assert principal.account == "billing"
