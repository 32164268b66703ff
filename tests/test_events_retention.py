"""The change log's retention: configured (code or environment), applied by the sweeper through the core, on every
backend, by id and by age."""

from __future__ import annotations

import pytest

from litestar_registry import RegistryConfig, RegistryPlugin
from litestar_registry.background import Sweeper
from litestar_registry.config import RegistryConfigurationError
from litestar_registry.core.auth import Principal, Role
from litestar_registry.core.clock import ManualClock
from litestar_registry.core.models import Registration
from litestar_registry.core.ports import ServiceStore
from litestar_registry.core.registry import Registry
from litestar_registry.plugin import registry_policy

OWNER = Principal(account="team", role=Role.SERVICE)


def test_retention_defaults_to_a_week_and_100_000_events_and_reaches_the_core() -> None:
    config = RegistryConfig()
    assert (config.events_retention_seconds, config.events_retention_count) == (604_800.0, 100_000)
    plugin = RegistryPlugin(
        RegistryConfig(store_url="memory://", events_retention_seconds=60, events_retention_count=9)
    )
    policy = plugin.registry.policy
    assert (policy.events_retention_seconds, policy.events_retention_count) == (60, 9)


def test_the_environment_sets_the_retention() -> None:
    config = RegistryConfig.from_env(
        {"REGISTRY_EVENTS_RETENTION_SECONDS": "3600", "REGISTRY_EVENTS_RETENTION_COUNT": "500"}
    )
    assert (config.events_retention_seconds, config.events_retention_count) == (3600.0, 500)
    variables = [variable for variable, _, _ in RegistryConfig.environment_variables()]
    assert {"REGISTRY_EVENTS_RETENTION_SECONDS", "REGISTRY_EVENTS_RETENTION_COUNT"} <= set(variables)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("REGISTRY_EVENTS_RETENTION_SECONDS", "0"), ("REGISTRY_EVENTS_RETENTION_COUNT", "0")],
)
def test_retention_below_one_stops_startup_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(RegistryConfigurationError, match=variable):
        RegistryConfig.from_env({variable: value})


def _registry(store: ServiceStore, clock: ManualClock, **settings: object) -> Registry:
    config = RegistryConfig(store=store, clock=clock, auto_approve_all=True, **settings)  # type: ignore[arg-type]
    return Registry(store, registry_policy(config), clock=clock)


async def _register(registry: Registry, *slugs: str) -> None:
    for slug in slugs:
        await registry.register(Registration(slug=slug, name=slug, version="1"), OWNER)


async def test_the_core_keeps_the_newest_events_up_to_the_count(store: ServiceStore) -> None:
    clock = ManualClock()
    registry = _registry(store, clock, events_retention_count=3)
    assert await registry.trim_events() == 0  # an empty log
    await _register(registry, "a", "b", "c", "d", "e")
    assert await registry.trim_events() == 2
    page = await store.read_events()
    assert ([e.subject for e in page.items], page.last_id) == (["c", "d", "e"], 5)
    assert await registry.trim_events() == 0


async def test_the_core_drops_events_past_their_age(store: ServiceStore) -> None:
    clock = ManualClock()
    registry = _registry(store, clock, events_retention_seconds=60)
    await _register(registry, "a", "b")
    clock.advance(30)
    await _register(registry, "c")
    clock.advance(30)  # a and b are 60 s old: not older than the retention yet
    assert await registry.trim_events() == 0
    clock.advance(1)
    assert await registry.trim_events() == 2
    assert [e.subject for e in (await store.read_events()).items] == ["c"]
    clock.advance(3600)
    assert await registry.trim_events() == 1
    assert (await store.read_events()).last_id == 3


async def test_the_sweeper_applies_retention_at_every_sweep(store: ServiceStore) -> None:
    clock = ManualClock()
    registry = _registry(store, clock, events_retention_count=1)
    await _register(registry, "a", "b", "c")
    assert await Sweeper(registry, interval=60).run_once() == 0  # nothing due, but the log is trimmed
    assert [e.subject for e in (await store.read_events()).items] == ["c"]
