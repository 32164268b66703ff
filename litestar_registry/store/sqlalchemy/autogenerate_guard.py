"""Keep the registry's tables out of every Alembic autogenerate but the registry's own.

A host that shares its database with the registry (its engine through ``sqlalchemy_config=``, or only the URL) runs
its own autogenerate: ``litestar database make-migrations``, ``alembic revision --autogenerate``, ``alembic check``.
Its ``env.py`` knows nothing of our tables, so Alembic finds them in the database and not in the host's metadata, and
proposes to drop them; the host's next ``upgrade`` would then delete every registration. advanced-alchemy's
``env.py`` template passes no ``include_name``/``include_object`` hook, and the host should not need one.

How: importing this module (which importing the SQL store does, and so does the host's CLI when it loads the app)
registers :func:`hide_registry_tables` on Alembic's *global* comparator dispatcher,
``alembic.autogenerate.comparators``. Alembic copies that dispatcher into every autogenerate run and documents its
functions as taking place unconditionally, whatever the run's ``autogenerate_plugins`` list says. The function runs at
the top-level ``"autogenerate"`` target with ``DispatchPriority.LAST``, after Alembic's own comparators have filled in
the upgrade operations, and removes the operations on registry tables; the downgrade is derived from what is left.

Why not an Alembic 1.18 :class:`~alembic.runtime.plugins.Plugin`: plugin comparators run only when the plugin's name
matches the run's ``autogenerate_plugins``, whose default (``["alembic.autogenerate.*"]``) matches Alembic's own
namespace only. A plugin outside it needs a line in the host's ``env.py``, and one named inside it would squat
Alembic's namespace and still vanish as soon as a host lists its plugins. Why not a PostgreSQL schema of our own:
SQLite has none, a host autogenerating with ``include_schemas=True`` would see it again, and every existing
deployment would have to move its tables.

What counts as a registry table: a name that starts with ``registry_`` (every table of ours, the Alembic version
table ``registry_alembic_version`` included, and any table a future migration adds or an older one left behind),
unless the host's own metadata declares a table of that name: a host table is never hidden from its owner's models.
Runs whose version table is ``registry_alembic_version`` are the registry's own migrations and comparisons, and are
left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import MetaData

# Importing alembic.autogenerate logs an INFO line per built-in plugin since Alembic 1.16: noise in an app's log and in
# every `litestar registry db` command. Set before our first alembic import (this module's); only that logger is
# quieted, so what a migration does ("Running upgrade ...") still shows.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

from alembic.autogenerate import comparators  # noqa: E402
from alembic.util import DispatchPriority, PriorityDispatchResult  # noqa: E402

from litestar_registry.store.sqlalchemy.migrate import VERSION_TABLE  # noqa: E402
from litestar_registry.store.sqlalchemy.models import TABLE_PREFIX  # noqa: E402

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext
    from alembic.operations.ops import MigrateOperation, UpgradeOps

__all__ = ("SUBGROUP", "hide_registry_tables")

logger = logging.getLogger("litestar_registry.migrate")

SUBGROUP = "litestar_registry"
"""Our chain in the dispatcher: a ``STOP`` returned by another comparator's chain never skips us."""


def hide_registry_tables(autogen_context: AutogenContext, upgrade_ops: UpgradeOps) -> PriorityDispatchResult:
    """Remove the upgrade operations on registry tables from a host's autogenerate run; leave our own runs alone."""
    if autogen_context.migration_context.version_table == VERSION_TABLE:
        return PriorityDispatchResult.CONTINUE
    declared = {table.name for metadata in _metadatas(autogen_context.metadata) for table in metadata.tables.values()}
    kept = [op for op in upgrade_ops.ops if not _on_registry_table(op, declared)]
    hidden = len(upgrade_ops.ops) - len(kept)
    if hidden:
        upgrade_ops.ops[:] = kept
        logger.info(
            "autogenerate: left out %d operation(s) on litestar-registry's tables (%s*), which migrate with "
            "'litestar registry db'",
            hidden,
            TABLE_PREFIX,
        )
    return PriorityDispatchResult.CONTINUE


def _metadatas(metadata: MetaData | Iterable[MetaData] | None) -> list[MetaData]:
    if metadata is None:
        return []
    return [metadata] if isinstance(metadata, MetaData) else list(metadata)


def _on_registry_table(op: MigrateOperation, declared: set[str]) -> bool:
    """Whether ``op`` (a create, drop or modify of a table, or an index on one) is about a registry table."""
    name = getattr(op, "table_name", None)
    return isinstance(name, str) and name.startswith(TABLE_PREFIX) and name not in declared


comparators.dispatch_for("autogenerate", priority=DispatchPriority.LAST, subgroup=SUBGROUP)(hide_registry_tables)
