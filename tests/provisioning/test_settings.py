"""Provisioning's settings, from code or REGISTRY_* variables, checked when the config is built; DBOS's defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import make_url

from litestar_registry import RegistryConfig, RegistryPlugin
from litestar_registry.config import RegistryConfigurationError
from litestar_registry.provisioning import Call, Step, WorkflowDefinition
from litestar_registry.provisioning.crypto import CredentialCipher
from litestar_registry.provisioning.service import callback_url, default_dbos_url
from tests.provisioning.conftest import KEY

OTHER_KEY = CredentialCipher.generate_key()
ON = {
    "REGISTRY_PROVISIONING": "true",
    "REGISTRY_PROVISIONING_KEYS": f"{KEY},{OTHER_KEY}",
    "REGISTRY_PROVISIONING_CALLBACK_BASE_URL": "https://registry.example.com",
}


def test_every_provisioning_setting_comes_from_the_environment() -> None:
    config = RegistryConfig.from_env(
        {
            **ON,
            "REGISTRY_PROVISIONING_DBOS_URL": "postgresql://dbos:pw-secret-77@db/dbos",
            "REGISTRY_PROVISIONING_APPLICATION_VERSION": "2026.12",
            "REGISTRY_PROVISIONING_EXECUTOR_ID": "pod-7",
            "REGISTRY_PROVISIONING_INSTANCE_TTL_SECONDS": "12",
            "REGISTRY_PROVISIONING_ALLOW_LOOPBACK": "yes",
            "REGISTRY_PROVISIONING_ALLOW_PRIVATE": "on",
        }
    )
    assert config.provisioning is True
    assert config.provisioning_keys == (KEY, OTHER_KEY)  # the first encrypts, both decrypt
    assert config.provisioning_callback_base_url == "https://registry.example.com"
    assert config.provisioning_dbos_url == "postgresql://dbos:pw-secret-77@db/dbos"
    assert (config.provisioning_application_version, config.provisioning_executor_id) == ("2026.12", "pod-7")
    assert config.provisioning_instance_ttl_seconds == 12.0
    assert (config.provisioning_allow_loopback, config.provisioning_allow_private) == (True, True)
    shown = {name: (value, masked) for name, value, masked in config.to_env()}
    assert shown["REGISTRY_PROVISIONING_KEYS"] == (f"{KEY[:2]}******,{OTHER_KEY[:2]}******", True)
    assert shown["REGISTRY_PROVISIONING_DBOS_URL"] == ("postgresql://dbos:***@db/dbos", True)


def test_provisioning_is_off_and_closed_by_default() -> None:
    config = RegistryConfig()
    assert config.provisioning is False
    assert (config.provisioning_allow_loopback, config.provisioning_allow_private) == (False, False)
    assert config.provisioning_dbos_url is None
    assert config.provisioning_executor_id is None


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (
            {"REGISTRY_PROVISIONING": "true"},
            [
                "REGISTRY_PROVISIONING_CALLBACK_BASE_URL (provisioning_callback_base_url): expected the public URL",
                "REGISTRY_PROVISIONING_KEYS (provisioning_keys): expected at least one Fernet key",
            ],
        ),
        (
            {**ON, "REGISTRY_PROVISIONING_KEYS": "not-a-fernet-key-at-all"},
            ["REGISTRY_PROVISIONING_KEYS (provisioning_keys) key 1: expected a Fernet key (urlsafe base64"],
        ),
        (
            {**ON, "REGISTRY_PROVISIONING_CALLBACK_BASE_URL": "registry.example.com"},
            ["REGISTRY_PROVISIONING_CALLBACK_BASE_URL (provisioning_callback_base_url): expected an http(s) URL"],
        ),
        (
            {**ON, "REGISTRY_PROVISIONING_DBOS_URL": "mysql://db/dbos"},
            ["REGISTRY_PROVISIONING_DBOS_URL (provisioning_dbos_url): expected sqlite:///path or postgresql://"],
        ),
        (
            {**ON, "REGISTRY_STORE_URL": "redis://cache:6379/0"},
            ["REGISTRY_STORE_URL (store_url): expected a SQL or memory store while provisioning is on"],
        ),
        (
            {**ON, "REGISTRY_PROVISIONING_INSTANCE_TTL_SECONDS": "0"},
            ["REGISTRY_PROVISIONING_INSTANCE_TTL_SECONDS (provisioning_instance_ttl_seconds): expected a finite"],
        ),
        (
            {**ON, "REGISTRY_PROVISIONING_INSTANCE_TTL_SECONDS": "100000"},
            ["REGISTRY_PROVISIONING_INSTANCE_TTL_SECONDS (provisioning_instance_ttl_seconds): expected seconds from"],
        ),
        (
            {**ON, "REGISTRY_SERVICE_KEYS": f"billing={KEY}"},
            ["expected a key of its own"],  # a Fernet key is no API key
        ),
    ],
)
def test_settings_provisioning_cannot_run_with_stop_the_app(variables: dict[str, str], expected: list[str]) -> None:
    with pytest.raises(RegistryConfigurationError) as caught:
        RegistryConfig.from_env(variables)
    message = str(caught.value)
    for part in expected:
        assert part in message
    for key in (KEY, OTHER_KEY, "not-a-fernet-key-at-all"):
        assert key not in message


def test_a_broken_definition_stops_the_plugin_before_it_serves() -> None:
    async def noop(ctx: object) -> None:
        return None

    definition = WorkflowDefinition("once", [Step("only", Call(noop))])  # type: ignore[arg-type]
    config = RegistryConfig.from_env(ON, store_url="memory://", provisioning_definitions=[definition, definition])
    with pytest.raises(RegistryConfigurationError, match="a definition named 'once' is registered already"):
        RegistryPlugin(config)


def test_dbos_gets_a_file_beside_a_sqlite_store_and_shares_a_postgresql_database(tmp_path: Path) -> None:
    beside = default_dbos_url(make_url(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"))
    assert beside == f"sqlite:///{tmp_path / 'registry-dbos.sqlite'}"
    assert default_dbos_url(make_url("sqlite+aiosqlite:///registry.db")) == "sqlite:///registry-dbos.sqlite"
    shared = default_dbos_url(make_url("postgresql+asyncpg://app:pw@db:5432/registry?ssl=require"))
    assert shared == "postgresql://app:pw@db:5432/registry"  # psycopg, which DBOS speaks; its tables in schema dbos
    assert default_dbos_url(make_url("sqlite+aiosqlite:///:memory:")) is None  # a temporary file then
    assert default_dbos_url(None) is None


def test_the_callback_url_is_the_public_origin_and_the_registry_path() -> None:
    assert callback_url("https://registry.example.com/", "/api/v1") == (
        "https://registry.example.com/api/v1/provisioning/callback"
    )
    assert callback_url("http://127.0.0.1:8000", "/") == "http://127.0.0.1:8000/provisioning/callback"
