"""Bad input answers 4xx with a problem body and changes nothing in the store."""

from __future__ import annotations

from typing import Any

import pytest

from litestar_registry.core.models import ServiceQuery
from tests.api.conftest import A, Harness, registration
from tests.api.test_registry_routes import HEARTBEAT, REGISTER, problem

BAD_REGISTRATIONS: dict[str, dict[str, Any]] = {
    "unknown field": {"colour": "red"},
    "wrong type": {"version": 3},
    "uppercase slug": {"slug": "Billing"},
    "double hyphen": {"slug": "bill--ing"},
    "trailing hyphen": {"slug": "billing-"},
    "leading digit": {"slug": "1billing"},
    "trailing newline": {"slug": "billing\n"},
    "long slug": {"slug": "b" * 64},
    "empty name": {"name": ""},
    "huge tag list": {"tags": [f"t{i}" for i in range(101)]},
    "huge metadata": {"metadata": {f"k{i}": i for i in range(101)}},
    "bad endpoint": {"endpoints": [{"url": "http://x"}]},
    "ttl zero": {"ttl_seconds": 0},
    "ttl too long": {"ttl_seconds": 10**9},
    "null name": {"name": None},
}


@pytest.mark.parametrize("case", sorted(BAD_REGISTRATIONS))
async def test_bad_registration_is_422_and_stores_nothing(h: Harness, case: str) -> None:
    body = registration(**BAD_REGISTRATIONS[case])
    for method in ("POST", "PUT"):
        response = await h.client.request(method, REGISTER, json=body, headers=A)
        details = problem(response, 422, "invalid_input")
        assert details["errors"], details
        assert details["errors"][0]["field"]
    assert (await h.plugin.store.find(ServiceQuery())).items == []


async def test_bad_input_leaves_an_existing_service_unchanged(h: Harness) -> None:
    await h.register()
    before = await h.plugin.store.get("billing")
    for body in (registration(tags=[1, 2]), registration(colour="red"), registration(name="x" * 201)):
        problem(await h.client.put(REGISTER, json=body, headers=A), 422, "invalid_input")
    for beat in (
        {"slug": "billing", "status": "fine"},
        {"slug": "billing", "uptime_seconds": -1},
        {"slug": "billing", "x": 1},
    ):
        problem(await h.client.post(HEARTBEAT, json=beat, headers=A), 422, "invalid_input")
    assert await h.plugin.store.get("billing") == before


async def test_body_that_is_not_json_or_too_large(make_harness: Any) -> None:
    h = await make_harness(max_body_bytes=2_000)
    big = registration(description="x" * 1_990)
    problem(await h.client.post(REGISTER, json=big, headers=A), 413, "body_too_large")
    garbage = await h.client.post(REGISTER, content=b"{not json", headers={**A, "Content-Type": "application/json"})
    assert garbage.status_code in (400, 422)
    assert garbage.headers["content-type"].startswith("application/problem+json")
    assert await h.plugin.store.get("billing") is None
