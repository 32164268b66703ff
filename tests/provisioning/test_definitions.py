"""Definitions are checked when they are registered: a broken DAG never reaches a tenant."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest

from litestar_registry.core.errors import InvalidInput
from litestar_registry.provisioning import (
    Call,
    Callback,
    DefinitionError,
    DefinitionRegistry,
    HttpCall,
    RetryPolicy,
    Step,
    StepContext,
    UnknownDefinition,
    WorkflowDefinition,
)


async def noop(ctx: StepContext) -> dict[str, Any]:
    return {}


def step(name: str, *deps: str) -> Step:
    return Step(name, Call(noop), depends_on=deps)


def test_a_valid_dag_keeps_its_order_and_knows_what_is_ready() -> None:
    definition = WorkflowDefinition("provision", [step("a"), step("b"), step("c", "a", "b"), step("d", "a")])
    assert definition.step_names == ("a", "b", "c", "d")
    assert definition.ready(succeeded=[], started=[]) == ["a", "b"]
    assert definition.ready(succeeded=["a"], started=["a", "b"]) == ["d"]
    assert definition.ready(succeeded=["a", "b"], started=["a", "b", "d"]) == ["c"]
    assert definition.step("c").kind == "call"
    assert Step("h", HttpCall(url="https://example.com")).kind == "http"
    assert Step("w", Callback()).kind == "callback"


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([step("a", "b"), step("b", "a")], "has a cycle: a -> b -> a"),
        ([step("a", "c"), step("b", "a"), step("c", "b")], "has a cycle: a -> c -> b -> a"),
        ([step("a"), step("b", "a"), step("c", "b", "d"), step("d", "c")], "has a cycle: c -> d -> c"),
        ([step("a", "a")], "step 'a' depends on itself"),
        ([step("a", "ghost")], "step 'a' depends on 'ghost', which is not a step"),
        ([step("a"), step("a")], "duplicate step name 'a'"),
        ([], "has no steps"),
    ],
)
def test_broken_dags_are_refused_with_a_clear_error(steps: list[Step], message: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        WorkflowDefinition("broken", steps)
    assert message in caught.value.detail
    assert caught.value.code == "invalid_definition"


@pytest.mark.parametrize("name", ["", "Upper", "1digit", "has space", "a" * 64, "dot.ted"])
def test_names_are_checked(name: str) -> None:
    with pytest.raises(DefinitionError, match="invalid step name"):
        Step(name, Call(noop))
    with pytest.raises(DefinitionError, match="invalid definition name"):
        WorkflowDefinition(name, [step("a")])


def test_a_step_needs_a_known_action_a_tuple_of_dependencies_and_a_positive_timeout() -> None:
    with pytest.raises(DefinitionError, match="action must be"):
        Step("a", noop)  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="not a string"):
        Step("a", Call(noop), depends_on="b")  # type: ignore[arg-type]
    for timeout in (0, -1, math.inf, math.nan):
        with pytest.raises(DefinitionError, match="timeout_seconds"):
            Step("a", Call(noop), timeout_seconds=timeout)


def test_retry_policy_backs_off_exponentially_up_to_its_cap() -> None:
    policy = RetryPolicy(attempts=10, initial_interval_seconds=0.5, backoff_rate=2.0, max_interval_seconds=3.0)
    assert [policy.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert RetryPolicy(attempts=100, backoff_rate=10.0, max_interval_seconds=7.0).delay(99) == 7.0  # no overflow
    with pytest.raises(ValueError, match="numbered from 1"):
        policy.delay(0)


@pytest.mark.parametrize(
    "fields",
    [
        {"attempts": 0},
        {"attempts": 101},
        {"initial_interval_seconds": -1},
        {"initial_interval_seconds": math.nan},
        {"backoff_rate": 0.5},
        {"initial_interval_seconds": 5, "max_interval_seconds": 1},
    ],
)
def test_retry_policy_refuses_nonsense(fields: dict[str, Any]) -> None:
    with pytest.raises(DefinitionError):
        RetryPolicy(**fields)


class Inputs(msgspec.Struct, forbid_unknown_fields=True):
    plan: str
    seats: int = 1


def test_inputs_are_checked_against_the_definitions_type() -> None:
    definition = WorkflowDefinition("typed", [step("a")], inputs=Inputs)
    assert definition.validate_inputs({"plan": "pro"}) == {"plan": "pro", "seats": 1}
    with pytest.raises(InvalidInput, match="inputs do not match") as caught:
        definition.validate_inputs({"plan": "pro", "extra": 1})
    assert caught.value.extra == {"field": "inputs"}
    with pytest.raises(InvalidInput):
        definition.validate_inputs({"seats": 2})
    untyped = WorkflowDefinition("untyped", [step("a")])
    assert untyped.validate_inputs(None) == {}
    with pytest.raises(InvalidInput, match="NUL"):
        untyped.validate_inputs({"name": "a\x00b"})


def test_the_registry_refuses_a_second_definition_of_a_name_and_answers_unknown_names() -> None:
    registry = DefinitionRegistry([WorkflowDefinition("one", [step("a")])])
    with pytest.raises(DefinitionError, match="registered already"):
        registry.register(WorkflowDefinition("one", [step("b")]))
    with pytest.raises(UnknownDefinition) as caught:
        registry.get("two")
    assert caught.value.code == "unknown_definition"
    assert "one" in registry
    assert registry.names() == ["one"]
