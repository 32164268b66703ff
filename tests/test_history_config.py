"""``history_limit``: how many version-history entries a service keeps, from code or ``REGISTRY_HISTORY_LIMIT``."""

from __future__ import annotations

import pytest

from litestar_registry import RegistryConfig, RegistryPlugin
from litestar_registry.config import RegistryConfigurationError


def test_the_history_limit_defaults_to_100_and_reaches_the_core() -> None:
    assert RegistryConfig().history_limit == 100
    plugin = RegistryPlugin(RegistryConfig(store_url="memory://", history_limit=7))
    assert plugin.registry.policy.history_limit == 7


def test_the_environment_sets_the_history_limit() -> None:
    assert RegistryConfig.from_env({"REGISTRY_HISTORY_LIMIT": "12"}).history_limit == 12


@pytest.mark.parametrize("value", [0, -3])
def test_a_history_limit_below_one_stops_startup_naming_the_variable(value: int) -> None:
    with pytest.raises(RegistryConfigurationError, match=r"REGISTRY_HISTORY_LIMIT.*>= 1"):
        RegistryConfig(history_limit=value)
    with pytest.raises(RegistryConfigurationError, match="REGISTRY_HISTORY_LIMIT"):
        RegistryConfig.from_env({"REGISTRY_HISTORY_LIMIT": str(value)})
