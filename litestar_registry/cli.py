"""``litestar registry ...``: the registry's own commands, beside (never instead of) the host's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
@click.option("--show-secrets", is_flag=True, help="Print keys and the store URL's password instead of masking them.")
@click.option("--defaults", is_flag=True, help="Print the defaults instead of the app's settings.")
@click.pass_context
def show_env(ctx: click.Context, show_secrets: bool, defaults: bool) -> None:
    """Print the app's REGISTRY_* settings as an env file, which RegistryConfig.from_env reads back.

    A secret (a key, the store URL's password) is masked, on a commented-out line, unless --show-secrets: the output
    is then safe to paste, and still a valid env file.
    """
    from litestar_registry.config import RegistryConfig

    config = RegistryConfig() if defaults else _plugin(ctx).config
    click.echo("# litestar-registry settings" + (" (defaults)" if defaults else " of this app"))
    if config.store is not None or config.sqlalchemy_config is not None:
        click.echo("# REGISTRY_STORE_URL is not used: the app gives its store in code")
    for variable, value, masked in config.to_env(show_secrets=show_secrets):
        click.echo(f"# {variable}={value}  (masked: --show-secrets prints it)" if masked else f"{variable}={value}")


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


@registry_group.group(name="db")
def db_group() -> None:
    """Migrate the SQL store's tables: their own Alembic history, version table registry_alembic_version.

    The host's own migrations (``litestar database ...``) never see these tables, nor these commands the host's.
    """


def _migration_target(ctx: click.Context) -> tuple[str, dict[str, Any]] | None:
    """The URL and engine options of the app's SQL store; ``None``, after saying so, for a store without a schema."""
    from litestar_registry.store.sqlalchemy import SQLAlchemyServiceStore

    store = _plugin(ctx).store
    if isinstance(store, SQLAlchemyServiceStore):
        return store.migration_target()
    click.echo(f"the {type(store).__name__} keeps no SQL schema: nothing to migrate")
    return None


def _migrate(ctx: click.Context, action: str, revision: str, sql: bool) -> None:
    """Run ``migrate.<action>_sync`` on the app's SQL store and say what changed (or print the SQL, offline)."""
    from litestar_registry.store.sqlalchemy import migrate

    if (target := _migration_target(ctx)) is None:
        return
    url, options = target
    run = getattr(migrate, f"{action}_sync")
    if sql:
        click.echo(run(url, revision, engine_options=options, sql=True) or "", nl=False)
        return
    before = migrate.current_sync(url, engine_options=options)
    run(url, revision, engine_options=options)
    after = migrate.current_sync(url, engine_options=options)
    click.echo(f"registry schema: {before or '(none)'} -> {after or '(none)'} (newest: {migrate.head()})")


@db_group.command(name="upgrade")
@click.option("--revision", default="head", show_default=True, help="Revision to upgrade to.")
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it (offline; REVISION may be FROM:TO).")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str, sql: bool) -> None:
    """Bring the registry's tables to REVISION (the newest by default): the production deployment step."""
    _migrate(ctx, "upgrade", revision, sql)


@db_group.command(name="downgrade")
@click.argument("revision")
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it (REVISION must be FROM:TO).")
@click.pass_context
def db_downgrade(ctx: click.Context, revision: str, sql: bool) -> None:
    """Take the registry's tables back to REVISION; 'base' drops them, and every service with them."""
    _migrate(ctx, "downgrade", revision, sql)


@db_group.command(name="stamp")
@click.argument("revision")
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it.")
@click.pass_context
def db_stamp(ctx: click.Context, revision: str, sql: bool) -> None:
    """Record REVISION as the schema's revision without migrating: for tables that already match it."""
    _migrate(ctx, "stamp", revision, sql)


@db_group.command(name="current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Show the registry schema's revision in the database, and the newest this version ships."""
    from litestar_registry.store.sqlalchemy import migrate

    if (target := _migration_target(ctx)) is None:
        return
    url, options = target
    found, newest = migrate.current_sync(url, engine_options=options), migrate.head()
    state = "up to date" if found == newest else "behind: run 'litestar registry db upgrade'"
    click.echo(f"current: {found or '(none)'}\nnewest:  {newest} ({state})")
