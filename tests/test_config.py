"""Every setting from code or from REGISTRY_* variables; bad values fail at startup with a clear message."""

from __future__ import annotations

import asyncio
from dataclasses import fields
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.exceptions import ImproperlyConfiguredException

from litestar_registry import MemoryServiceStore, RegistryConfig, RegistryPlugin
from litestar_registry.config import RegistryConfigurationError
from litestar_registry.store import mask_url
from tests.clients import serve


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
            "REGISTRY_TTL_OPEN": "on",
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
    assert config.ttl_open is True


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
    assert code_only == {
        "store",
        "sqlalchemy_config",
        "guards",
        "authenticator",
        "dependents_check",
        "provisioning_definitions",
        "clock",
    }


@pytest.mark.parametrize(
    ("variable", "raw", "expected", "shown"),
    [
        ("REGISTRY_EXPIRY_WINDOWS", "three", "expected a whole number", "'three'"),
        ("REGISTRY_PUBLIC_READS", "maybe", "expected true or false", "'maybe'"),
        ("REGISTRY_DEFAULT_TTL_SECONDS", "0", "expected a finite number of seconds > 0", "0.0"),
        ("REGISTRY_DEFAULT_TTL_SECONDS", "nan", "expected a finite number of seconds > 0", "nan"),
        ("REGISTRY_MIN_TTL_SECONDS", "-1", "expected a finite number of seconds > 0", "-1.0"),
        ("REGISTRY_MAX_TTL_SECONDS", "inf", "expected a finite number of seconds > 0", "inf"),
        ("REGISTRY_SWEEP_INTERVAL_SECONDS", "-inf", "expected a finite number of seconds > 0", "-inf"),
        ("REGISTRY_TTL_SECONDS", "nan", "expected a finite number of seconds > 0", "nan"),
        ("REGISTRY_TTL_SECONDS", "100000", "expected seconds from REGISTRY_MIN_TTL_SECONDS=1.0 to", "100000.0"),
        ("REGISTRY_MAX_BODY_BYTES", "0", "expected a whole number >= 1", "0"),
        ("REGISTRY_MAX_BODY_BYTES", "-65536", "expected a whole number >= 1", "-65536"),
        ("REGISTRY_SWEEP_BATCH_SIZE", "0", "expected a whole number >= 1", "0"),
        ("REGISTRY_TTL_EXPIRY_WINDOWS", "0", "expected a whole number >= 1", "0"),
        ("REGISTRY_DEFAULT_PAGE_SIZE", "0", "expected a whole number >= 1", "0"),
        ("REGISTRY_DEFAULT_PAGE_SIZE", "501", "expected at most REGISTRY_MAX_PAGE_SIZE=500", "501"),
        ("REGISTRY_MAX_PAGE_SIZE", "-5", "expected a whole number >= 1", "-5"),
        ("REGISTRY_PATH", "no-slash", "expected a path that starts with '/'", "'no-slash'"),
        ("REGISTRY_TTL_PATH", "v2", "expected a path that starts with '/'", "'v2'"),
        ("REGISTRY_TTL_ACCOUNT", "", "expected an account name", "''"),
    ],
)
def test_a_bad_value_stops_startup_with_one_line_naming_variable_form_and_value(
    variable: str, raw: str, expected: str, shown: str
) -> None:
    with pytest.raises(ImproperlyConfiguredException) as caught:
        RegistryConfig.from_env({variable: raw})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"litestar-registry configuration: {variable} (")
    assert expected in message
    assert message.endswith(f"got {shown}")


@pytest.mark.parametrize(
    "settings",
    [
        {"max_body_bytes": 0},
        {"sweep_interval_seconds": float("nan")},
        {"default_ttl_seconds": float("inf")},
        {"ttl_seconds": -3.0},
        {"expiry_windows": True},
        {"default_page_size": "50"},
    ],
)
def test_values_set_in_code_are_checked_as_the_environments(settings: dict[str, object]) -> None:
    [(name, _)] = settings.items()
    with pytest.raises(RegistryConfigurationError, match=rf"REGISTRY_{name.upper()} \({name}\): expected"):
        RegistryConfig(**settings)  # type: ignore[arg-type]


def test_every_problem_is_named_in_the_one_line() -> None:
    with pytest.raises(RegistryConfigurationError) as caught:
        RegistryConfig.from_env({"REGISTRY_MAX_BODY_BYTES": "zero", "REGISTRY_DEV_MODE": "perhaps"})
    assert [problem.split(" ")[0] for problem in caught.value.problems] == [
        "REGISTRY_DEV_MODE",
        "REGISTRY_MAX_BODY_BYTES",
    ]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres+asyncpg://app:pw-secret-77@db/registry", "expected postgresql+asyncpg://"),
        ("sqlite+aiosqllite:///registry.db", "driver for sqlite is aiosqlite, not 'aiosqllite'"),
        ("sqlite:///registry.db", "expected sqlite+aiosqlite://"),
        ("postgresql://app:pw-secret-77@db/registry", "names no driver"),
        ("postgresql+psycopg2://app:pw-secret-77@db/registry", "not 'psycopg2'"),
        ("postgresql+asyncpg://app:pw-secret-77@db:port/registry", "expected a port number"),
        ("redis://:pw-secret-77@cache:99999/0", "expected a port number"),
        ("sqlite+aiosqlite://registry.db", "expected sqlite+aiosqlite:///relative/path.db"),
        ("mongodb://app:pw-secret-77@db/registry", "no store speaks mongodb://"),
        ("registry.db", "expected a URL"),
    ],
)
def test_a_store_url_no_store_can_use_is_refused_when_the_config_is_built(url: str, expected: str) -> None:
    with pytest.raises(RegistryConfigurationError) as caught:
        RegistryConfig(store_url=url)
    message = str(caught.value)
    assert message.startswith("litestar-registry configuration: REGISTRY_STORE_URL (store_url): expected")
    assert expected in message
    assert "pw-secret-77" not in message
    assert ("***" in message) == ("pw-secret-77" in url)


@pytest.mark.parametrize(
    "url",
    [
        "memory://",
        "sqlite+aiosqlite:///registry.db",
        "sqlite+aiosqlite:////var/lib/registry.db",
        "postgresql+asyncpg://app:secret@db:5432/registry",
        "redis://cache:6379/0",
        "rediss://:secret@cache/0",
        "valkey://cache",
        "valkeys://cache:6380/2",
        "unix:///run/redis.sock",
    ],
)
def test_every_store_url_form_is_accepted(url: str) -> None:
    assert RegistryConfig(store_url=url).store_url == url


def test_a_store_given_in_code_makes_the_url_irrelevant() -> None:
    config = RegistryConfig(store_url="mongodb://x", store=MemoryServiceStore())
    assert isinstance(RegistryPlugin(config).store, MemoryServiceStore)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql+asyncpg://app:s3cr%40t@db:5432/registry", "postgresql+asyncpg://app:***@db:5432/registry"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://cache/0?password=s3cret&db=1", "redis://cache/0?password=***&db=1"),
        ("postgresql+asyncpg://app@db/registry", "postgresql+asyncpg://app@db/registry"),
        ("sqlite+aiosqlite:///registry.db", "sqlite+aiosqlite:///registry.db"),
        ("memory://", "memory://"),
    ],
)
def test_mask_url_hides_only_the_password(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_the_error_is_a_click_exception_so_command_lines_print_one_line() -> None:
    import click

    with pytest.raises(click.ClickException) as caught:
        RegistryConfig.from_env({"REGISTRY_EXPIRY_WINDOWS": "three"})
    assert caught.value.format_message() == str(caught.value)


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
        ({"service_keys": {"billing": "short-key"}}, "expected a key of 16 characters or more"),
        ({"service_keys": {"billing": "same-key-0123456789"}, "admin_keys": {"ops": "same-key-0123456789"}}, "own"),
        ({"service_keys": {"a": "same-key-0123456789", "b": "same-key-0123456789"}}, "expected a key of its own"),
        ({"ttl_registration_key": "short-ttl-key"}, "REGISTRY_TTL_REGISTRATION_KEY (ttl_registration_key)"),
        ({"admin_keys": {"ops": "same-key,0123456789"}}, "without spaces or commas"),
        ({"admin_keys": {"ops=root": "same-key-0123456789"}}, "expected an account name without ','"),
    ],
)
def test_bad_keys_stop_startup_with_the_key_masked(settings: dict[str, object], named: str) -> None:
    with pytest.raises(ImproperlyConfiguredException) as caught:
        RegistryConfig(**settings)  # type: ignore[arg-type]
    message = str(caught.value)
    assert named in message
    assert "short-key" not in message
    assert "same-key-0123456789" not in message
    assert "same-key,0123456789" not in message
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


@pytest.mark.parametrize(
    ("url", "server"),
    [
        ("postgresql+asyncpg://registry:pw-secret-77@127.0.0.1:1/registry", "127.0.0.1', 1"),
        ("redis://:pw-secret-77@127.0.0.1:1/0", "127.0.0.1:1"),
    ],
    ids=["postgresql", "redis"],
)
async def test_an_unreachable_store_stops_startup_naming_the_variable_password_masked(
    url: str, server: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = Litestar(plugins=[RegistryPlugin(RegistryConfig(store_url=url))], logging_config=None)
    with caplog.at_level("INFO", logger="litestar_registry"), pytest.raises(ExceptionGroup) as caught:
        async with serve(app):
            pass  # pragma: no cover - startup fails
    [error] = caught.value.exceptions  # Litestar's lifespan runs the hooks in a task group
    assert isinstance(error, RegistryConfigurationError)
    message = str(error)
    assert message.startswith(f"litestar-registry configuration: REGISTRY_STORE_URL={mask_url(url)}: ")
    assert "the store did not open" in message
    assert server in message
    assert "pw-secret-77" not in message
    assert error.__suppress_context__  # no chained traceback of the driver's internals
    errors = [r.getMessage() for r in caplog.records if r.name == "litestar_registry" and r.levelname == "ERROR"]
    assert errors == [message]
    assert "pw-secret-77" not in caplog.text


async def test_startup_logs_one_line_naming_the_store(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    app = Litestar(plugins=[RegistryPlugin(RegistryConfig(store_url=url))], logging_config=None)
    with caplog.at_level("INFO", logger="litestar_registry"):
        async with serve(app):
            pass
    infos = [r.getMessage() for r in caplog.records if r.name == "litestar_registry" and r.levelname == "INFO"]
    assert infos == [f"litestar-registry: store SQLAlchemyServiceStore, from REGISTRY_STORE_URL={url}"]


async def test_store_pool_size_reaches_the_store(tmp_path: Path) -> None:
    config = RegistryConfig.from_env(
        {"REGISTRY_STORE_URL": f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}", "REGISTRY_STORE_POOL_SIZE": "3"}
    )
    assert config.store_pool_size == 3
    plugin = RegistryPlugin(config)
    async with plugin.store as store:
        assert store.engine.pool.size() == 3  # type: ignore[attr-defined]
    assert RegistryConfig().store_pool_size is None
    with pytest.raises(ImproperlyConfiguredException, match="REGISTRY_STORE_POOL_SIZE"):
        RegistryConfig(store_pool_size=0)
