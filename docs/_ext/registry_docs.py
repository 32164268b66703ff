"""Tables generated from the code at build time, so that the docs can never drift from it.

Directives (use them in reStructuredText pages, or inside a MyST ``{eval-rst}`` block):

``registry-env-table``
    Every ``REGISTRY_*`` variable, from :meth:`RegistryConfig.environment_variables` plus the attribute docstring
    under each field of ``RegistryConfig`` (read with :mod:`ast`: attribute docstrings exist only in the source),
    then the announcing client's ``REGISTRY_CLIENT_*`` ones (``RegistryClientConfig``). An argument, ``server`` or
    ``client``, shows one of the two only.
``registry-code-only-table``
    The ``RegistryConfig`` fields that only code can set (no environment variable), with their docstrings;
    ``client`` as argument: those of ``RegistryClientConfig``.
``registry-state-table``
    The registry's state table, from ``litestar_registry.core.states.TRANSITIONS``.
``provisioning-state-table``
    A provisioning state table, ``workflow`` or ``step`` (the argument), from
    ``litestar_registry.provisioning.states.WORKFLOW_TRANSITIONS`` / ``STEP_TRANSITIONS``.
``registry-error-codes``
    Problem ``code`` -> HTTP status, from the registry Router's exception handling tables.
``webhook-state-table``
    The webhook delivery state table, from ``litestar_registry.webhooks.states.DELIVERY_TRANSITIONS``.
``webhook-schedule-table``
    The default retry schedule of webhook deliveries, from ``RegistryConfig().webhooks_retry_schedule``.

A documented field without a docstring, or an event without a row, is a build warning (and ``-W`` fails the build).

It also keeps napoleon away from attribute docstrings. Napoleon reads the first line of an attribute docstring as
``type: description``, so "Which store: ``memory://``, ..." would render with the type "Which store". Our attribute
docstrings are plain reStructuredText (types come from the annotations), so they are restored as written.
"""

from __future__ import annotations

import ast
import inspect
import itertools
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

CONFIGS = {
    "server": ("litestar_registry.config", "RegistryConfig", "litestar_registry.RegistryConfig"),
    "client": (
        "litestar_registry.client.config",
        "RegistryClientConfig",
        "litestar_registry.client.RegistryClientConfig",
    ),
}
"""The config dataclasses the settings tables read: ``{argument: (module, class, documented name)}``."""


def configs(names: Iterable[str]) -> list[tuple[type, str]]:
    """``(class, documented name)`` of the configs named (keys of ``CONFIGS``)."""
    from importlib import import_module

    return [(getattr(import_module(CONFIGS[name][0]), CONFIGS[name][1]), CONFIGS[name][2]) for name in names]


def field_docstrings(cls: type) -> dict[str, str]:
    """``{field: docstring}`` for the attribute docstrings written right below each field of the dataclass ``cls``."""
    source = Path(inspect.getfile(cls)).read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            docs: dict[str, str] = {}
            body = node.body
            for stmt, following in itertools.pairwise(body):
                if (
                    isinstance(stmt, ast.AnnAssign)
                    and isinstance(stmt.target, ast.Name)
                    and isinstance(following, ast.Expr)
                    and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)
                ):
                    docs[stmt.target.id] = inspect.cleandoc(following.value.value)
            return docs
    raise LookupError(f"class {cls.__name__} not found in {inspect.getfile(cls)}")


def value_format(annotation: str) -> str:
    """How a variable for a field annotated ``annotation`` is written (the annotation is a string here)."""
    kinds = [
        ("bool", "boolean"),
        ("int", "integer"),
        ("float", "number"),
        ("frozenset", "comma-separated list"),
        ("Sequence", "comma-separated list"),
        ("Mapping", "``account=key``, comma-separated"),
        ("str", "string"),
    ]
    head = annotation.replace(" ", "").split("|")[0].split("[")[0]
    text = next((text for name, text in kinds if head == name), f"``{annotation}``")
    return f"{text}; empty: unset" if annotation.endswith("| None") else text


def shown_default(default: str, annotation: str) -> str:
    """A default from ``environment_variables()`` (as a variable holds it) as the table shows it; empty as unset."""
    if not default:
        return "(unset)" if annotation.replace(" ", "").endswith("|None") else "(empty)"
    return f"``{default}``"


def list_table(header: Iterable[str], rows: Iterable[Iterable[str]], widths: str = "auto") -> str:
    """A reStructuredText ``list-table`` (each cell may hold several lines of markup)."""

    def cell(text: str, first: bool) -> str:
        lines = text.splitlines() or [""]
        lead = "   * - " if first else "     - "
        return "\n".join([lead + lines[0], *("       " + line if line else "" for line in lines[1:])])

    out = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in [list(header), *map(list, rows)]:
        out.extend(cell(text, index == 0) for index, text in enumerate(row))
    return "\n".join(out) + "\n"


class _TableDirective(SphinxDirective):
    has_content = False

    def source_of(self, obj: Any) -> None:
        """Rebuild the page when the module that ``obj`` comes from changes."""
        self.env.note_dependency(inspect.getfile(obj))

    def table(self, text: str) -> list[Any]:
        return list(self.parse_text_to_nodes(text))


class EnvTable(_TableDirective):
    """Every ``REGISTRY_*`` environment variable, its default, format and meaning."""

    optional_arguments = 1

    def run(self) -> list[Any]:
        rows = []
        for config, documented in configs(self.arguments or CONFIGS):
            self.source_of(config)
            docs = field_docstrings(config)
            annotations = {spec.name: str(spec.type) for spec in fields(config)}
            for variable, name, default in config.environment_variables():
                doc = docs.get(name)
                if not doc:
                    logger.warning(
                        "%s.%s has no attribute docstring for the docs",
                        config.__name__,
                        name,
                        location=self.get_location(),
                    )
                    doc = ""
                rows.append(
                    [
                        f"``{variable}``",
                        shown_default(default, annotations[name]),
                        value_format(annotations[name]),
                        f"{doc}\n\n(:attr:`~{documented}.{name}`)",
                    ]
                )
        return self.table(list_table(["Variable", "Default", "Format", "Meaning"], rows, "30 15 15 40"))


class CodeOnlyTable(_TableDirective):
    """The settings without an environment variable: only code can set them."""

    optional_arguments = 1

    def run(self) -> list[Any]:
        ((config, documented),) = configs(self.arguments or ["server"])
        self.source_of(config)
        docs = field_docstrings(config)
        rows = []
        for spec in fields(config):
            if "env" in spec.metadata:
                continue
            doc = docs.get(spec.name)
            if not doc:
                logger.warning(
                    "%s.%s has no attribute docstring for the docs",
                    config.__name__,
                    spec.name,
                    location=self.get_location(),
                )
                doc = ""
            rows.append([f":attr:`~{documented}.{spec.name}`", doc])
        return self.table(list_table(["Field", "Meaning"], rows, "25 75"))


class StateTable(_TableDirective):
    """The registry's transitions, one row per event and target status."""

    def run(self) -> list[Any]:
        from litestar_registry.core import states
        from litestar_registry.core.models import ServiceStatus

        self.source_of(states)
        order = list(ServiceStatus)

        def name(status: ServiceStatus | None) -> str:
            return "(none)" if status is None else f"``{status.value}``"

        rows = []
        for event in states.Event:
            pairs = [(origin, target) for (origin, evt), target in states.TRANSITIONS.items() if evt is event]
            if not pairs:
                logger.warning("event %r has no transition in TRANSITIONS", event.value, location=self.get_location())
                continue
            if all(origin == target for origin, target in pairs):
                grouped = {"(unchanged)": [origin for origin, _ in pairs]}
            else:
                grouped = {}
                for origin, target in pairs:
                    grouped.setdefault(name(target), []).append(origin)
            for target, origins in grouped.items():
                origins.sort(key=lambda s: -1 if s is None else order.index(s))
                rows.append([", ".join(name(o) for o in origins), f"``{event.value}``", target])
        return self.table(list_table(["From", "Event", "To"], rows, "45 25 30"))


class ProvisioningStateTable(_TableDirective):
    """A provisioning state table (``workflow`` or ``step``), one row per event and target status."""

    required_arguments = 1

    def run(self) -> list[Any]:
        from litestar_registry.provisioning import states

        self.source_of(states)
        which = self.arguments[0]
        if which not in ("workflow", "step"):
            logger.warning("provisioning-state-table: workflow or step, not %r", which, location=self.get_location())
            return []
        table, events, order = (
            (states.WORKFLOW_TRANSITIONS, states.WorkflowEvent, list(states.WorkflowStatus))
            if which == "workflow"
            else (states.STEP_TRANSITIONS, states.StepEvent, list(states.StepStatus))
        )
        rows = []
        for event in events:
            grouped: dict[Any, list[Any]] = {}
            for (origin, evt), target in table.items():
                if evt is event:
                    grouped.setdefault(target, []).append(origin)
            if not grouped:
                logger.warning("%s event %r has no transition", which, event.value, location=self.get_location())
            for target, origins in grouped.items():
                origins.sort(key=order.index)
                rows.append([", ".join(f"``{o.value}``" for o in origins), f"``{event.value}``", f"``{target.value}``"])
        return self.table(list_table(["From", "Event", "To"], rows, "45 25 30"))


class WebhookStateTable(_TableDirective):
    """The webhook delivery transitions, one row per event and target state."""

    def run(self) -> list[Any]:
        from litestar_registry.webhooks import states

        self.source_of(states)
        order = list(states.DeliveryState)
        rows = []
        for event in states.DeliveryEvent:
            grouped: dict[Any, list[Any]] = {}
            for (origin, evt), target in states.DELIVERY_TRANSITIONS.items():
                if evt is event:
                    grouped.setdefault(target, []).append(origin)
            if not grouped:
                logger.warning("delivery event %r has no transition", event.value, location=self.get_location())
            meaning = inspect.cleandoc(_attribute_doc(states.DeliveryEvent, event.name)).replace("\n", " ")
            for target, origins in grouped.items():
                origins.sort(key=order.index)
                rows.append(
                    [
                        ", ".join(f"``{o.value}``" for o in origins),
                        f"``{event.value}``",
                        f"``{target.value}``",
                        meaning,
                    ]
                )
        return self.table(list_table(["From", "Event", "To", "When"], rows, "20 12 12 56"))


def _attribute_doc(cls: type, name: str) -> str:
    """The docstring written under ``name`` in the class body of ``cls`` (enum members have none of their own)."""
    source = Path(inspect.getfile(cls)).read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            for stmt, following in itertools.pairwise(node.body):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else []
                if (
                    any(isinstance(t, ast.Name) and t.id == name for t in targets)
                    and isinstance(following, ast.Expr)
                    and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)
                ):
                    return following.value.value
    return ""


class WebhookScheduleTable(_TableDirective):
    """The default retry schedule: each attempt, the wait before it, and the time since the event."""

    def run(self) -> list[Any]:
        from litestar_registry.config import RegistryConfig

        self.source_of(RegistryConfig)
        delays = RegistryConfig().webhooks_retry_schedule
        rows = []
        elapsed = 0.0
        for attempt, delay in enumerate(delays, start=1):
            elapsed += delay
            rows.append([str(attempt), _duration(delay), _duration(elapsed)])
        return self.table(list_table(["Attempt", "Wait before it", "Since the event (no jitter)"], rows, "20 40 40"))


def _duration(seconds: float) -> str:
    """``0``, ``5 s``, ``5 min``, ``2 h``, ``1 d 2 h 35 min``: seconds as a person reads them."""
    if seconds == 0:
        return "0 (at once)"
    parts = []
    left = int(seconds)
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size} {unit}")
            left %= size
    return " ".join(parts)


class ErrorCodes(_TableDirective):
    """Problem codes and their HTTP statuses, as the registry Router's exception handlers map them."""

    def run(self) -> list[Any]:
        from litestar_registry.api import problems

        self.source_of(problems)
        rows: list[tuple[int, list[str]]] = []
        for kind, status in problems.STATUS_BY_ERROR.items():
            meaning = inspect.cleandoc(kind.__doc__ or "").split("\n\n")[0].replace("\n", " ")
            source = f":class:`~{kind.__module__}.{kind.__qualname__}`"
            rows.append((status, [f"``{kind.code}``", str(status), source, meaning]))
        for status, code in problems.CODES.items():
            rows.append((status, [f"``{code}``", str(status), "HTTP layer", problems.TITLES.get(status, "")]))
        rows.sort(key=lambda row: row[0])
        return self.table(
            list_table(["code", "status", "raised as", "meaning"], [row for _, row in rows], "20 8 22 50")
        )


_ATTRIBUTE_KINDS = {"attribute", "data"}
_kept_attributes: dict[str, list[str]] = {}
"""Attribute docstrings as written, between the two handlers below (the same event, so the same process)."""


def _keep_attribute_docstring(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """Before napoleon: remember an attribute docstring as written."""
    if what in _ATTRIBUTE_KINDS:
        _kept_attributes[name] = list(lines)


def _restore_attribute_docstring(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """After napoleon: put the attribute docstring back as written."""
    kept = _kept_attributes.pop(name, None)
    if what in _ATTRIBUTE_KINDS and kept is not None:
        lines[:] = kept


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.napoleon")
    app.connect("autodoc-process-docstring", _keep_attribute_docstring, priority=100)
    app.connect("autodoc-process-docstring", _restore_attribute_docstring, priority=900)
    app.add_directive("registry-env-table", EnvTable)
    app.add_directive("registry-code-only-table", CodeOnlyTable)
    app.add_directive("registry-state-table", StateTable)
    app.add_directive("provisioning-state-table", ProvisioningStateTable)
    app.add_directive("registry-error-codes", ErrorCodes)
    app.add_directive("webhook-state-table", WebhookStateTable)
    app.add_directive("webhook-schedule-table", WebhookScheduleTable)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
