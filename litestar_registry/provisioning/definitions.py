"""Workflow definitions: a named DAG of steps that the host registers in code, checked when it is registered.

A step is a Python coroutine (:class:`Call`), an HTTP request (:class:`HttpCall`) or a wait for an external service's
callback (:class:`Callback`). Each has a timeout, a retry policy and optionally a compensation, which undoes it when a
later step fails for good. Steps whose dependencies have succeeded run concurrently.

Example:
    ``WorkflowDefinition("provision", [Step("allocate", Call(allocate), compensation=release),
    Step("external", Callback(), depends_on=("allocate",), timeout_seconds=600)])``
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, TypeAlias

import msgspec

from litestar_registry.core.errors import InvalidInput
from litestar_registry.core.validation import check_storable
from litestar_registry.provisioning.errors import DefinitionError, UnknownDefinition

__all__ = (
    "NAME_PATTERN",
    "Call",
    "Callback",
    "Compensation",
    "CompensationContext",
    "DefinitionRegistry",
    "HttpCall",
    "PermanentStepError",
    "RetryPolicy",
    "Step",
    "StepAction",
    "StepContext",
    "WorkflowDefinition",
)

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
"""Definition and step names: a lowercase letter, then up to 62 lowercase letters, digits, ``_`` or ``-``."""
_NAME = re.compile(NAME_PATTERN)
MAX_STEPS = 100
"""Most steps in one definition."""
MAX_ATTEMPTS = 100


class PermanentStepError(Exception):
    """Raised by a step to fail at once, without the retries its policy would otherwise allow."""


@dataclass(frozen=True, kw_only=True)
class StepContext:
    """What a step is given: who it runs for, the workflow's inputs and the outputs of the steps it depends on.

    ``dependencies`` maps each dependency's name to its outputs, credentials decrypted (in memory only).
    """

    tenant: str
    service_slug: str
    workflow_id: str
    step: str
    attempt: int
    inputs: Mapping[str, Any]
    dependencies: Mapping[str, Mapping[str, Any]]

    @property
    def idempotency_key(self) -> str:
        """``{workflow_id}:{step}``: the same for every attempt, so a receiver can drop a repeated request."""
        return f"{self.workflow_id}:{self.step}"


@dataclass(frozen=True, kw_only=True)
class CompensationContext(StepContext):
    """What a compensation is given: the step's own context and the outputs it produced (credentials decrypted)."""

    outputs: Mapping[str, Any]


StepFunction: TypeAlias = Callable[[StepContext], Awaitable[Mapping[str, Any] | None]]
Compensation: TypeAlias = Callable[[CompensationContext], Awaitable[None]]


@dataclass(frozen=True)
class Call:
    """Run a coroutine registered by the host; what it returns (a mapping, or ``None``) becomes the step's outputs."""

    fn: StepFunction


@dataclass(frozen=True, kw_only=True)
class HttpCall:
    """Send an HTTP request; its outputs are ``{"status_code": ..., "body": ...}`` (JSON body decoded, else text).

    The URL goes through the outbound URL policy and redirects are not followed. Every attempt sends
    ``Idempotency-Key: {workflow_id}:{step}``, since a step runs at least once. A 2xx answer succeeds; 408, 425, 429 and
    5xx answers and transport errors are retried; any other answer fails the step at once.
    """

    url: str | Callable[[StepContext], str]
    method: str = "POST"
    body: Callable[[StepContext], Any] | None = None
    """The JSON body; ``None`` sends ``{workflow_id, step, service_slug, inputs}``."""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Callback:
    """Hand an external service a single-use ``callback_token``, then wait for its callback.

    The step POSTs ``{callback_token, callback_url, workflow_id, step, service_slug, inputs}`` to the URL of the
    service's registered endpoint named ``endpoint_name``, or else to ``inputs["provisioning_url"]``, retrying per the
    step's policy. It then waits up to the step's timeout; the token expires with it. The callback's ``endpoint`` and
    ``credentials`` (encrypted at rest) become the step's outputs.
    """

    endpoint_name: str = "provisioning"


StepAction: TypeAlias = Call | HttpCall | Callback


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often a failed attempt is tried again, and how long to wait in between.

    ``attempts`` in all; after the first failure wait ``initial_interval_seconds``, ``backoff_rate`` times longer after
    each next one, never longer than ``max_interval_seconds``.
    """

    attempts: int = 3
    initial_interval_seconds: float = 1.0
    backoff_rate: float = 2.0
    max_interval_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not 1 <= self.attempts <= MAX_ATTEMPTS:
            raise DefinitionError(f"retry attempts must be between 1 and {MAX_ATTEMPTS}, not {self.attempts}")
        for name in ("initial_interval_seconds", "max_interval_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise DefinitionError(f"retry {name} must be a finite number >= 0, not {value}")
        if not (math.isfinite(self.backoff_rate) and self.backoff_rate >= 1):
            raise DefinitionError(f"retry backoff_rate must be a finite number >= 1, not {self.backoff_rate}")
        if self.max_interval_seconds < self.initial_interval_seconds:
            raise DefinitionError("retry max_interval_seconds must not be below initial_interval_seconds")

    def delay(self, failed_attempt: int) -> float:
        """Seconds to wait after attempt number ``failed_attempt`` (1-based) failed, capped."""
        if failed_attempt < 1:
            raise ValueError("attempts are numbered from 1")
        exponent = min(failed_attempt - 1, 1024)  # beyond this the cap applies anyway; avoids float overflow
        try:
            raw = self.initial_interval_seconds * self.backoff_rate**exponent
        except OverflowError:
            return self.max_interval_seconds
        return min(raw, self.max_interval_seconds)


@dataclass(frozen=True)
class Step:
    """One node of the DAG.

    ``timeout_seconds`` bounds each attempt of a :class:`Call` or :class:`HttpCall`; for a :class:`Callback` it is how
    long the step waits for its callback (and how long its token lives). ``compensation`` undoes the step when a later
    step fails for good; it gets the same retry policy.
    """

    name: str
    action: StepAction
    _: KW_ONLY
    depends_on: tuple[str, ...] = ()
    timeout_seconds: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    compensation: Compensation | None = None

    def __post_init__(self) -> None:
        _check_name(self.name, "step")
        if not isinstance(self.action, Call | HttpCall | Callback):
            raise DefinitionError(f"step '{self.name}': action must be Call, HttpCall or Callback")
        if isinstance(self.depends_on, str):
            raise DefinitionError(f"step '{self.name}': depends_on is a tuple of step names, not a string")
        object.__setattr__(self, "depends_on", tuple(self.depends_on))
        if not (math.isfinite(self.timeout_seconds) and self.timeout_seconds > 0):
            raise DefinitionError(f"step '{self.name}': timeout_seconds must be a finite number > 0")

    @property
    def kind(self) -> str:
        """``call``, ``http`` or ``callback``."""
        if isinstance(self.action, Call):
            return "call"
        return "http" if isinstance(self.action, HttpCall) else "callback"


class WorkflowDefinition:
    """A named DAG of steps, validated on construction: a broken one never gets registered.

    ``inputs`` is an optional msgspec Struct type (or any type msgspec converts to) that a start's inputs must match.
    """

    def __init__(self, name: str, steps: Sequence[Step], *, inputs: type[Any] | None = None) -> None:
        _check_name(name, "definition")
        self.name = name
        self.inputs_type = inputs
        self.steps: tuple[Step, ...] = tuple(steps)
        if not self.steps:
            raise DefinitionError(f"definition '{name}' has no steps")
        if len(self.steps) > MAX_STEPS:
            raise DefinitionError(f"definition '{name}' has {len(self.steps)} steps; at most {MAX_STEPS}")
        self._by_name: dict[str, Step] = {}
        for step in self.steps:
            if step.name in self._by_name:
                raise DefinitionError(f"definition '{name}': duplicate step name '{step.name}'")
            self._by_name[step.name] = step
        for step in self.steps:
            for dependency in step.depends_on:
                if dependency == step.name:
                    raise DefinitionError(f"definition '{name}': step '{step.name}' depends on itself")
                if dependency not in self._by_name:
                    raise DefinitionError(
                        f"definition '{name}': step '{step.name}' depends on '{dependency}', which is not a step"
                    )
        cycle = _find_cycle(self.steps)
        if cycle:
            raise DefinitionError(f"definition '{name}' has a cycle: {' -> '.join(cycle)}")

    def __repr__(self) -> str:
        return f"WorkflowDefinition({self.name!r}, steps={[step.name for step in self.steps]!r})"

    @property
    def step_names(self) -> tuple[str, ...]:
        """Step names in definition order (the order ready steps start in)."""
        return tuple(step.name for step in self.steps)

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        return self._by_name[name]

    def ready(self, succeeded: Iterable[str], started: Iterable[str]) -> list[str]:
        """Steps not yet started whose dependencies have all succeeded, in definition order."""
        done, begun = set(succeeded), set(started)
        return [
            step.name
            for step in self.steps
            if step.name not in begun and step.name not in done and all(dep in done for dep in step.depends_on)
        ]

    def validate_inputs(self, inputs: Mapping[str, Any] | None) -> dict[str, Any]:
        """``inputs`` as plain JSON-able data, checked against ``inputs`` (the type) if the definition has one.

        Raises ``InvalidInput`` (field ``inputs``) for inputs that do not match or that no store can keep.
        """
        raw: Any = dict(inputs or {})
        if self.inputs_type is not None:
            try:
                raw = msgspec.to_builtins(msgspec.convert(raw, self.inputs_type))
            except msgspec.ValidationError as exc:
                raise InvalidInput(f"inputs do not match definition '{self.name}': {exc}", field="inputs") from None
        if not isinstance(raw, dict):
            raise InvalidInput("inputs must be an object", field="inputs")
        check_storable(raw, "inputs")
        return raw


class DefinitionRegistry:
    """The definitions a host registered, by name; registering a second one under a taken name is refused."""

    def __init__(self, definitions: Iterable[WorkflowDefinition] = ()) -> None:
        self._definitions: dict[str, WorkflowDefinition] = {}
        for definition in definitions:
            self.register(definition)

    def register(self, definition: WorkflowDefinition) -> WorkflowDefinition:
        """Add ``definition``; ``DefinitionError`` if its name is taken."""
        if not isinstance(definition, WorkflowDefinition):
            raise DefinitionError("only a WorkflowDefinition can be registered")
        if definition.name in self._definitions:
            raise DefinitionError(f"a definition named '{definition.name}' is registered already")
        self._definitions[definition.name] = definition
        return definition

    def get(self, name: str) -> WorkflowDefinition:
        """The definition called ``name``; ``UnknownDefinition`` if there is none."""
        try:
            return self._definitions[name]
        except KeyError:
            raise UnknownDefinition(f"no workflow definition named {name!r}", field="definition") from None

    def __contains__(self, name: object) -> bool:
        return name in self._definitions

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._definitions)


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise DefinitionError(f"invalid {what} name {name!r}: {NAME_PATTERN}")


def _find_cycle(steps: Sequence[Step]) -> list[str]:
    """A cycle among ``steps`` as a path that ends where it starts, or ``[]`` if the graph is acyclic."""
    edges = {step.name: step.depends_on for step in steps}
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(edges, white)
    for root in edges:
        if colour[root] != white:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        colour[root] = grey
        while stack:
            node, index = stack[-1]
            deps = edges[node]
            if index < len(deps):
                stack[-1] = (node, index + 1)
                nxt = deps[index]
                if colour[nxt] == grey:
                    return [*path[path.index(nxt) :], nxt]
                if colour[nxt] == white:
                    colour[nxt] = grey
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                colour[node] = black
                stack.pop()
                path.pop()
    return []
