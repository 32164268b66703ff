"""The core owns its ports and its rules: it imports nothing from the stores; its policy has one source of defaults."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import msgspec

import litestar_registry.core
from litestar_registry import RegistryConfig
from litestar_registry.core import ports
from litestar_registry.core.models import HealthReport, Heartbeat
from litestar_registry.core.registry import RegistryPolicy
from litestar_registry.plugin import registry_policy

CORE = Path(litestar_registry.core.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_core_module_imports_the_store_package() -> None:
    offenders = {
        path.name: sorted(module for module in _imported_modules(path) if module.startswith("litestar_registry.store"))
        for path in sorted(CORE.glob("*.py"))
    }
    assert {name: modules for name, modules in offenders.items() if modules} == {}


def test_importing_the_core_loads_no_store_module() -> None:
    probe = (
        "import sys, litestar_registry.core.registry, litestar_registry.core.ports; "
        "print(sorted(m for m in sys.modules if m.startswith('litestar_registry.store')))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_store_package_re_exports_the_cores_protocol() -> None:
    from litestar_registry import ServiceStore
    from litestar_registry.store import Advance
    from litestar_registry.store import ServiceStore as FromStore
    from litestar_registry.store.base import Advance as FromBase
    from litestar_registry.store.base import ServiceStore as FromBaseStore

    assert ServiceStore is FromStore is FromBaseStore is ports.ServiceStore
    assert Advance is FromBase is ports.Advance


def test_a_heartbeat_carries_a_health_report() -> None:
    assert Heartbeat.__struct_fields__ == ("slug", "health", "version")
    assert msgspec.structs.fields(Heartbeat)[1].type is HealthReport


def test_the_policy_has_no_defaults_of_its_own_and_takes_every_one_from_the_config() -> None:
    assert all(field.required for field in msgspec.structs.fields(RegistryPolicy))
    config = RegistryConfig(ttl_path="")
    policy = registry_policy(config)
    for name in RegistryPolicy.__struct_fields__:
        assert getattr(policy, name) == getattr(config, name), name
    changed = RegistryConfig(default_ttl_seconds=12.0, history_limit=7, max_page_size=20, default_page_size=5)
    assert (registry_policy(changed).default_ttl_seconds, registry_policy(changed).history_limit) == (12.0, 7)
    # The TTL dialect's account is approved at once when that dialect is mounted.
    assert registry_policy(RegistryConfig()).auto_approve_accounts == {RegistryConfig().ttl_account}
