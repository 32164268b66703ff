"""Seed 004 (the TTL dialect) through HTTP on every backend, and one registry shared with seed 000."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import A, Harness
from tests.api.test_registry_routes import HEARTBEAT, SERVICES

V2 = "/v2/services"
KEY = {"X-Service-Key": "secret-ttl-key-0123"}


def payload(service_id: str = "my-model", **info: Any) -> dict[str, Any]:
    """A registration as the servicekit/chapkit client sends it (with the extra top-level id it sends)."""
    return {
        "id": service_id,
        "url": f"http://{service_id}:8080",
        "info": {
            "id": service_id,
            "display_name": "My ML Model",
            "version": "1.0.0",
            "description": "A predictive model for disease forecasting",
            "model_metadata": {"author": "Your Name", "organization": "Your Org"},
            "period_type": "monthly",
            "min_prediction_periods": 1,
            "max_prediction_periods": 12,
            **info,
        },
    }


@pytest.fixture
async def v2(make_harness: Any) -> Harness:
    harness: Harness = await make_harness(ttl_registration_key="secret-ttl-key-0123")
    return harness


async def test_register_answers_the_seed_shape(v2: Harness) -> None:
    response = await v2.client.post(f"{V2}/$register", json=payload(), headers=KEY)
    assert response.status_code == 200
    assert response.json() == {
        "id": "my-model",
        "status": "registered",
        "service_url": "http://my-model:8080",
        "message": "Service registered successfully",
        "ttl_seconds": 30,
        "ping_url": "http://testserver.local/v2/services/my-model/$ping",
    }
    assert '"ttl_seconds":30,' in response.text  # a JSON integer, as the dialect's clients expect, not 30.0
    again = await v2.client.post(f"{V2}/%24register", json=payload(display_name="Renamed"), headers=KEY)
    assert (again.status_code, again.json()["message"]) == (200, "Service registration updated")
    record = await v2.plugin.store.get("my-model")
    assert (record.name, record.status.value, record.expiry_windows) == ("Renamed", "active", 1)


async def test_info_is_kept_as_sent_with_the_defaults_filled_in(v2: Harness) -> None:
    body = payload(extra_field={"nested": [1, 2]}, contact="x")
    del body["info"]["version"], body["info"]["min_prediction_periods"], body["info"]["max_prediction_periods"]
    body["info"]["model_metadata"] = {}
    await v2.client.post(f"{V2}/$register", json=body, headers=KEY)
    expected = {**body["info"], "version": "1.0.0", "min_prediction_periods": 0, "max_prediction_periods": 100}
    assert (await v2.client.get(f"{V2}/my-model")).json()["info"] == expected
    assert (await v2.client.get(V2)).json()["services"][0]["info"] == expected
    record = await v2.plugin.store.get("my-model")
    assert (record.version, record.extensions["v2"]["info"]) == ("1.0.0", expected)
    seen = (await v2.client.get(f"{SERVICES}/my-model", headers=A)).json()["data"]
    assert seen["version"] == "1.0.0"  # as the registry dialect shows it


SERVICEKIT_METADATA = dict.fromkeys(
    (
        "author",
        "author_note",
        "author_assessed_status",
        "contact_email",
        "organization",
        "organization_logo_url",
        "citation_info",
        "repository_url",
    )
)
"""The model metadata the servicekit client sends for a service that sets none of it: eight nulls."""


async def test_null_fields_are_left_out_at_every_depth(v2: Harness) -> None:
    body = payload(
        description=None,
        period_type=None,
        model_metadata={**SERVICEKIT_METADATA, "author": "Ann"},
        extra={"kept": 1, "dropped": None, "deeper": [{"dropped": None, "kept": "yes"}, None]},
    )
    assert (await v2.client.post(f"{V2}/$register", json=body, headers=KEY)).status_code == 200
    expected = {
        "id": "my-model",
        "display_name": "My ML Model",
        "version": "1.0.0",
        "model_metadata": {"author": "Ann"},
        "min_prediction_periods": 1,
        "max_prediction_periods": 12,
        "extra": {"kept": 1, "deeper": [{"kept": "yes"}, None]},  # a null item of a list is a value, not a field
    }
    assert (await v2.client.get(f"{V2}/my-model")).json()["info"] == expected
    assert (await v2.plugin.store.get("my-model")).extensions["v2"]["info"] == expected
    only_nulls = payload("quiet", model_metadata=SERVICEKIT_METADATA)
    assert (await v2.client.post(f"{V2}/$register", json=only_nulls, headers=KEY)).status_code == 200
    assert (await v2.client.get(f"{V2}/quiet")).json()["info"]["model_metadata"] == {}


async def test_a_service_of_the_registry_dialect_shows_its_info_with_the_defaults(v2: Harness) -> None:
    await v2.register("billing")
    assert (await v2.client.get(f"{V2}/billing")).json()["info"] == {
        "id": "billing",
        "display_name": "Billing",
        "version": "1.0.0",
        "description": "the billing service",
        "model_metadata": {},
        "min_prediction_periods": 0,
        "max_prediction_periods": 100,
    }


async def test_ping_list_get_delete(v2: Harness) -> None:
    await v2.client.post(f"{V2}/$register", json=payload(), headers=KEY)
    v2.clock.advance(20)
    ping = await v2.client.put(f"{V2}/my-model/$ping", headers=KEY)
    assert ping.status_code == 200
    assert ping.json() == {
        "id": "my-model",
        "status": "alive",
        "last_ping_at": "2026-01-01T00:00:20+00:00",
        "expires_at": "2026-01-01T00:00:50+00:00",
    }
    listed = (await v2.client.get(V2)).json()
    assert listed["count"] == 1
    entry = listed["services"][0]
    assert entry["registered_at"] == "2026-01-01T00:00:00+00:00"
    assert set(entry) == {"id", "url", "info", "registered_at", "last_updated", "last_ping_at", "expires_at"}
    assert (await v2.client.get(f"{V2}/my-model")).json() == entry

    assert (await v2.client.delete(f"{V2}/my-model", headers=KEY)).status_code == 204
    assert (await v2.client.get(f"{V2}/my-model")).json() == {"detail": "Service my-model not found"}
    assert (await v2.client.delete(f"{V2}/my-model", headers=KEY)).status_code == 404
    assert await v2.plugin.store.get("my-model") is None


async def test_silence_past_the_ttl_is_404_at_once_and_re_register_brings_it_back(v2: Harness) -> None:
    await v2.client.post(f"{V2}/$register", json=payload(), headers=KEY)
    v2.clock.advance(30)  # no sweep has run
    assert (await v2.client.put(f"{V2}/my-model/$ping", headers=KEY)).json() == {"detail": "Service my-model not found"}
    assert (await v2.client.get(f"{V2}/my-model")).status_code == 404
    assert (await v2.client.get(V2)).json() == {"count": 0, "services": []}
    again = await v2.client.post(f"{V2}/$register", json=payload(), headers=KEY)
    assert again.json()["message"] == "Service registered successfully"  # it was gone: seed 004 removes it
    assert (await v2.client.put(f"{V2}/my-model/$ping", headers=KEY)).status_code == 200


async def test_key_missing_is_422_wrong_is_401_and_reads_are_public(v2: Harness) -> None:
    missing = await v2.client.post(f"{V2}/$register", json=payload())
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["header", "x-service-key"]
    assert (
        await v2.client.post(f"{V2}/$register", json=payload(), headers={"X-Service-Key": "nope"})
    ).status_code == 401
    assert (await v2.client.put(f"{V2}/my-model/$ping", headers={"X-Service-Key": "nope"})).status_code == 401
    assert (await v2.client.delete(f"{V2}/my-model")).status_code == 422
    assert await v2.plugin.store.get("my-model") is None
    assert (await v2.client.get(V2)).status_code == 200


async def test_no_key_configured_means_closed_writes_unless_opened(make_harness: Any) -> None:
    closed = await make_harness()
    assert (await closed.client.post(f"{V2}/$register", json=payload())).status_code == 401
    assert await closed.plugin.store.get("my-model") is None
    opened = await make_harness(ttl_open=True)
    assert (await opened.client.post(f"{V2}/$register", json=payload())).status_code == 200


@pytest.mark.parametrize(
    "bad",
    [
        {"info": {"id": "my-model\n"}},
        {"info": {"id": "My-Model"}},
        {"info": {"model_metadata": None}},
        {"info": {"period_type": "daily"}},
        {"url": None},
    ],
)
async def test_bad_registrations_are_422_and_store_nothing(v2: Harness, bad: dict[str, Any]) -> None:
    body = payload()
    for key, value in bad.items():
        if isinstance(value, dict):
            body[key].update(value)
        else:
            body[key] = value
    if bad.get("info", {}).get("model_metadata", 0) is None:
        del body["info"]["model_metadata"]
    response = await v2.client.post(f"{V2}/$register", json=body, headers=KEY)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], list)
    assert await v2.plugin.store.get("my-model") is None
    assert await v2.plugin.store.get("My-Model") is None


async def test_text_no_backend_can_store_is_422_at_its_place_in_the_body(v2: Harness) -> None:
    body = payload(display_name="My\x00Model")
    response = await v2.client.post(f"{V2}/$register", json=body, headers=KEY)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["body", "info", "display_name"]]
    assert await v2.plugin.store.get("my-model") is None


async def test_an_oversized_registration_is_413_and_stores_nothing(make_harness: Any) -> None:
    v2: Harness = await make_harness(ttl_registration_key="secret-ttl-key-0123", max_body_bytes=2_048)
    body = payload(notes="x" * 4_000)  # info is kept as sent, so its size is what the body limit bounds
    response = await v2.client.post(f"{V2}/$register", json=body, headers=KEY)
    assert response.status_code == 413
    assert set(response.json()) == {"detail"}
    assert await v2.plugin.store.get("my-model") is None
    assert (await v2.client.post(f"{V2}/$register", json=payload(), headers=KEY)).status_code == 200


async def test_one_registry_for_both_dialects(v2: Harness) -> None:
    await v2.client.post(f"{V2}/$register", json=payload(), headers=KEY)
    seen = (await v2.client.get(f"{SERVICES}/my-model", headers=A)).json()["data"]
    assert (seen["name"], seen["base_url"], seen["status"]) == ("My ML Model", "http://my-model:8080", "active")

    await v2.register("billing")  # through seed 000
    listed = (await v2.client.get(V2)).json()
    assert [s["id"] for s in listed["services"]] == ["billing", "my-model"]
    assert listed["services"][0]["info"]["display_name"] == "Billing"

    v2.clock.advance(25)
    beat = await v2.client.post(HEARTBEAT, json={"slug": "billing"}, headers=A)
    assert beat.json()["data"]["next_heartbeat_due_at"] == "2026-01-01T00:00:55Z"
    ping = await v2.client.put(f"{V2}/billing/$ping", headers=KEY)
    assert ping.status_code == 403  # the v2 key does not own team-a's service
    assert (await v2.plugin.store.get("billing")).last_seen_at.isoformat() == "2026-01-01T00:00:25+00:00"


async def test_per_service_and_per_plugin_ttl(make_harness: Any) -> None:
    h = await make_harness(ttl_seconds=10, ttl_open=True)
    first = await h.client.post(f"{V2}/$register", json=payload())
    assert '"ttl_seconds":10,' in first.text
    own = await h.client.post(f"{V2}/$register", json={**payload("other"), "ttl_seconds": 5})
    assert '"ttl_seconds":5,' in own.text
    fraction = await h.client.post(f"{V2}/$register", json={**payload("third"), "ttl_seconds": 2.5})
    assert '"ttl_seconds":2.5,' in fraction.text
    h.clock.advance(6)
    assert [s["id"] for s in (await h.client.get(V2)).json()["services"]] == ["my-model"]
    assert isinstance((await h.plugin.store.get("my-model")).ttl_seconds, float)  # the core keeps a float
