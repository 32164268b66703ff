"""The topic catalog, generated from ``litestar_registry.core.events.CATALOG`` at build time.

Directive ``event-catalog``: the catalog's version, then one row per topic with its meaning (the payload Struct's
docstring) and every field of its payload (name, JSON type, whether it is always there, the field's docstring). A
topic whose payload has no docstring, or a field without one, is a build warning (and ``-W`` fails the build).
"""

from __future__ import annotations

import inspect
from typing import Any

import msgspec
from registry_docs import _TableDirective, field_docstrings, list_table
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)


def json_type(kind: Any) -> str:
    """A msgspec type as the JSON it is on the wire: ``string``, ``integer``, ``date-time``, ``array of string``..."""
    mi = msgspec.inspect
    if isinstance(kind, mi.Metadata):
        return json_type(kind.type)
    if isinstance(kind, mi.UnionType):
        parts = [json_type(part) for part in kind.types if not isinstance(part, mi.NoneType)]
        nullable = any(isinstance(part, mi.NoneType) for part in kind.types)
        return " or ".join(parts) + (" or null" if nullable else "")
    if isinstance(kind, mi.EnumType):
        return "one of " + ", ".join(f"``{member.value}``" for member in kind.cls)
    if isinstance(kind, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
        return f"array of {json_type(kind.item_type)}"
    names = {
        mi.StrType: "string",
        mi.IntType: "integer",
        mi.FloatType: "number",
        mi.BoolType: "boolean",
        mi.DateTimeType: "date-time (ISO 8601, UTC)",
        mi.DictType: "object",
        mi.AnyType: "any JSON",
    }
    return next((name for cls, name in names.items() if isinstance(kind, cls)), type(kind).__name__)


def payload_docs(struct: type) -> dict[str, str]:
    """The attribute docstrings of ``struct``'s fields, its base classes' included (the nearest wins)."""
    docs: dict[str, str] = {}
    for cls in reversed(struct.__mro__):
        if cls.__module__ == struct.__module__:
            docs.update(field_docstrings(cls))
    return docs


class EventCatalog(_TableDirective):
    """Every topic of the catalog, its meaning and its payload's fields."""

    def run(self) -> list[Any]:
        from litestar_registry.core import events

        self.source_of(events)
        rows = []
        for topic, struct in events.CATALOG.items():
            meaning = inspect.cleandoc(struct.__doc__ or "")
            if not meaning or meaning.startswith(struct.__name__ + "("):  # msgspec's generated signature, not ours
                logger.warning("payload %s has no docstring", struct.__name__, location=self.get_location())
                meaning = ""
            docs = payload_docs(struct)
            info = msgspec.inspect.type_info(struct)
            assert isinstance(info, msgspec.inspect.StructType)
            lines = []
            for field in info.fields:
                doc = docs.get(field.name, "")
                if not doc and field.name not in _SELF_EXPLAINED:
                    logger.warning(
                        "%s.%s has no docstring for the catalog",
                        struct.__name__,
                        field.name,
                        location=self.get_location(),
                    )
                presence = "" if field.required else ", optional"
                text = f"- ``{field.name}`` ({json_type(field.type)}{presence})"
                lines.append(text + (f": {' '.join(doc.split())}" if doc else ""))
            rows.append([f"``{topic.value}``", f"{meaning}\n\n(``{struct.__name__}``)", "\n".join(lines)])
        intro = f"Catalog version ``{events.CATALOG_VERSION}``, {len(rows)} topics.\n\n"
        return self.table(intro + list_table(["Topic", "Meaning", "Payload (``data``)"], rows, "22 30 48"))


_SELF_EXPLAINED = frozenset(
    {
        "slug",
        "name",
        "version",
        "status",
        "base_url",
        "tags",
        "capabilities",
        "revision",
        "previous_status",
        "previous_version",
        "last_seen_at",
        "failure_count",
        "workflow_id",
        "tenant",
        "service_slug",
        "definition",
        "steps",
        "step",
        "expires_at",
        "error",
        "cancelled",
    }
)
"""Fields whose name says what they are: no docstring needed (the others must have one)."""


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("registry_docs")
    app.add_directive("event-catalog", EventCatalog)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
