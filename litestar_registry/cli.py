"""``litestar registry ...``: the registry's own commands, beside (never instead of) the host's."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from litestar_registry.plugin import RegistryPlugin

__all__ = ("registry_group",)


def _plugin(ctx: click.Context) -> RegistryPlugin:
    from litestar_registry.plugin import RegistryPlugin

    return ctx.obj.app.plugins.get(RegistryPlugin)  # type: ignore[no-any-return]


@click.group(name="registry")
def registry_group() -> None:
    """Manage the service registry."""


@registry_group.command(name="env")
def show_env() -> None:
    """List every REGISTRY_* environment variable with its default."""
    from litestar_registry.config import RegistryConfig

    for variable, _, default in RegistryConfig.environment_variables():
        click.echo(f"{variable}={default}")


@registry_group.command(name="sweep")
@click.pass_context
def sweep(ctx: click.Context) -> None:
    """Degrade and expire silent services once, now (the app's sweeper does this on its own)."""
    import anyio

    plugin = _plugin(ctx)

    async def run() -> int:
        async with plugin.store:
            return len(await plugin.registry.sweep())

    click.echo(f"{anyio.run(run)} service(s) changed")
