"""Seed 000 through HTTP on every backend: register, re-register, deregister, heartbeat, reads."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import ADMIN, STRANGER, A, B, Harness, registration

REGISTER = "/api/v1/registry/register"
HEARTBEAT = "/api/v1/registry/heartbeat"
SERVICES = "/api/v1/registry/services"


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = dict(response.json())
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:litestar-registry:problem:{code}"
    assert {"title", "detail", "instance", "trace_id"} <= body.keys()
    assert ("errors" in body) == (status == 422)  # field errors belong to validation failures only
    return body


async def test_register_creates_an_active_service_in_an_envelope(h: Harness) -> None:
    response = await h.client.post(REGISTER, json=registration(), headers={**A, "X-Request-ID": "req-1"})
    assert response.status_code == 201
    body = response.json()
    assert body["meta"] == {"request_id": "req-1"}
    data = body["data"]
    assert (data["slug"], data["status"], data["approved"], data["changed"]) == ("billing", "active", True, True)
    assert data["endpoints"][0] == {
        "name": "api",
        "url": "http://billing:8080/api",
        "protocol": "http",
        "method": "GET",
        "description": None,
    }
    assert data["owner"] == {"name": "Ann", "email": "ann@example.com", "url": None}
    assert data["registered_at"] == data["updated_at"] == "2026-01-01T00:00:00Z"
    assert data["next_heartbeat_due_at"] == "2026-01-01T00:00:30Z"
    stored = await h.plugin.store.get("billing")
    assert stored is not None
    assert (stored.account, stored.status.value, stored.capabilities) == ("team-a", "active", ("invoicing",))
    assert [v.version for v in await h.plugin.store.versions("billing")] == ["1.0.0"]


async def test_register_twice_is_a_conflict_that_changes_nothing(h: Harness) -> None:
    await h.register()
    response = await h.client.post(REGISTER, json=registration(name="Other"), headers=A)
    body = problem(response, 409, "service_exists")
    assert "PUT" in body["detail"]
    assert body["service_status"] == "active"  # an extension member; the standard ``status`` stays the HTTP one
    assert (await h.plugin.store.get("billing")).name == "Billing"


async def test_unknown_account_starts_pending_and_is_not_discoverable(h: Harness) -> None:
    response = await h.client.post(REGISTER, json=registration("newbie"), headers=STRANGER)
    assert response.status_code == 201
    assert (response.json()["data"]["status"], response.json()["data"]["approved"]) == ("pending", False)
    assert (await h.client.get("/api/v1/entrypoints", headers=A)).json()["data"] == []
    assert (await h.client.get(f"{SERVICES}/newbie", headers=A)).status_code == 404
    own = await h.client.get(f"{SERVICES}/newbie", headers=STRANGER)
    assert own.json()["data"]["status"] == "pending"
    beat = await h.client.post(HEARTBEAT, json={"slug": "newbie"}, headers=STRANGER)
    problem(beat, 409, "service_conflict")


async def test_put_updates_idempotently_and_tracks_versions(h: Harness) -> None:
    created = await h.register()
    h.clock.advance(5)
    same = await h.client.put(REGISTER, json=registration(), headers=A)
    assert same.status_code == 200
    assert same.json()["data"]["changed"] is False
    assert same.json()["data"]["updated_at"] == created["updated_at"]
    revision = (await h.plugin.store.get("billing")).revision

    h.clock.advance(5)
    bumped = await h.client.put(REGISTER, json=registration(version="1.1.0", tags=["finance", "eu"]), headers=A)
    data = bumped.json()["data"]
    assert (data["changed"], data["version"], data["tags"]) == (True, "1.1.0", ["finance", "eu"])
    assert data["updated_at"] == "2026-01-01T00:00:10Z"
    assert data["registered_at"] == created["registered_at"]
    assert (await h.plugin.store.get("billing")).revision == revision + 1

    again = await h.client.put(REGISTER, json=registration(version="1.1.0", tags=["finance", "eu"]), headers=A)
    assert again.json()["data"]["changed"] is False
    versions = (await h.client.get(f"{SERVICES}/billing/versions", headers=A)).json()
    assert [(v["version"], v["previous_version"]) for v in versions["data"]] == [("1.0.0", None), ("1.1.0", "1.0.0")]
    assert versions["meta"]["count"] == 2


async def test_put_unknown_is_404(h: Harness) -> None:
    problem(await h.client.put(REGISTER, json=registration("ghost"), headers=A), 404, "service_not_found")
    assert await h.plugin.store.get("ghost") is None


async def test_another_account_cannot_touch_my_service(h: Harness) -> None:
    await h.register()
    problem(await h.client.put(REGISTER, json=registration(name="Hijack"), headers=B), 403, "access_denied")
    problem(await h.client.post(REGISTER, json=registration(), headers=B), 403, "access_denied")
    problem(await h.client.post(HEARTBEAT, json={"slug": "billing"}, headers=B), 403, "access_denied")
    problem(await h.client.request("DELETE", REGISTER, json={"slug": "billing"}, headers=B), 403, "access_denied")
    record = await h.plugin.store.get("billing")
    assert (record.name, record.revision) == ("Billing", 1)
    admin = await h.client.put(REGISTER, json=registration(name="By ops"), headers=ADMIN)
    assert admin.json()["data"]["name"] == "By ops"


async def test_deregister_refused_while_dependents_are_active(h: Harness) -> None:
    await h.register()
    h.dependents["billing"] = ["subscription:42", "subscription:43"]
    body = problem(
        await h.client.request("DELETE", REGISTER, json={"slug": "billing"}, headers=A), 409, "service_conflict"
    )
    assert body["dependents"] == ["subscription:42", "subscription:43"]  # an RFC 9457 extension member
    assert await h.plugin.store.get("billing") is not None

    h.dependents.clear()
    response = await h.client.request("DELETE", REGISTER, json={"slug": "billing", "reason": "retired"}, headers=A)
    assert (response.status_code, response.content) == (204, b"")
    assert await h.plugin.store.get("billing") is None
    problem(await h.client.request("DELETE", REGISTER, json={"slug": "billing"}, headers=A), 404, "service_not_found")


async def test_deregister_can_keep_the_record(make_harness: Any) -> None:
    h = await make_harness(keep_deregistered=True)
    await h.register()
    assert (await h.client.request("DELETE", REGISTER, json={"slug": "billing"}, headers=A)).status_code == 204
    assert (await h.plugin.store.get("billing")).status.value == "deregistered"
    listed = await h.client.get(SERVICES, params={"status": "deregistered"}, headers=A)
    assert [s["slug"] for s in listed.json()["data"]] == ["billing"]
    again = await h.register()
    assert again["status"] == "active"


async def test_heartbeat_refreshes_resets_and_restores(h: Harness) -> None:
    await h.register()
    h.clock.advance(65)  # two windows missed
    assert len(await h.registry.sweep()) == 1
    degraded = await h.plugin.store.get("billing")
    assert (degraded.status.value, degraded.failure_count) == ("degraded", 2)

    beat = {
        "slug": "billing",
        "status": "healthy",
        "uptime_seconds": 65.5,
        "instance_id": "i-1",
        "checks": {"db": "healthy"},
        "metrics": {"rps": 12.5},
        "message": "fine",
    }
    response = await h.client.post(HEARTBEAT, json=beat, headers=A)
    assert response.status_code == 200
    assert response.json()["data"] == {
        "slug": "billing",
        "status": "active",
        "acknowledged_at": "2026-01-01T00:01:05Z",
        "next_heartbeat_due_at": "2026-01-01T00:01:35Z",
        "failure_count": 0,
        "version_changed": False,
    }
    record = await h.plugin.store.get("billing")
    assert (record.status.value, record.failure_count, record.health.instance_id) == ("active", 0, "i-1")
    assert record.health.metrics == {"rps": 12.5}


async def test_heartbeat_reporting_degraded_degrades(h: Harness) -> None:
    await h.register()
    response = await h.client.post(HEARTBEAT, json={"slug": "billing", "status": "unhealthy"}, headers=A)
    assert response.json()["data"]["status"] == "degraded"
    assert (await h.client.get("/api/v1/entrypoints/billing", headers=A)).status_code == 404
    restored = await h.client.post(HEARTBEAT, json={"slug": "billing", "status": "healthy"}, headers=A)
    assert restored.json()["data"]["status"] == "active"


async def test_heartbeat_with_a_new_version_records_it(h: Harness) -> None:
    await h.register()
    h.clock.advance(3)
    response = await h.client.post(HEARTBEAT, json={"slug": "billing", "version": "2.0.0"}, headers=A)
    assert response.json()["data"]["version_changed"] is True
    same = await h.client.post(HEARTBEAT, json={"slug": "billing", "version": "2.0.0"}, headers=A)
    assert same.json()["data"]["version_changed"] is False
    record = await h.plugin.store.get("billing")
    assert record.version == "2.0.0"
    assert [(v.version, v.previous_version) for v in await h.plugin.store.versions("billing")] == [
        ("1.0.0", None),
        ("2.0.0", "1.0.0"),
    ]


async def test_heartbeat_for_unknown_or_expired_is_404(h: Harness) -> None:
    problem(await h.client.post(HEARTBEAT, json={"slug": "nobody"}, headers=A), 404, "service_not_found")
    await h.register()
    h.clock.advance(90)  # three windows: expired, whether or not a sweep ran
    problem(await h.client.post(HEARTBEAT, json={"slug": "billing"}, headers=A), 404, "service_not_found")
    shown = await h.client.get(f"{SERVICES}/billing", headers=A)
    assert (shown.json()["data"]["status"], shown.json()["data"]["failure_count"]) == ("expired", 3)
    again = await h.register()  # the client's answer to a 404: register afresh, a new life
    assert (again["status"], again["registered_at"], again["failure_count"]) == ("active", "2026-01-01T00:01:30Z", 0)


async def test_list_filters_and_pages(h: Harness) -> None:
    await h.register("alpha", tags=["core"], capabilities=["search"], description="full-text search")
    await h.register("bravo", tags=["edge"], capabilities=["index"], headers=B)
    await h.register("charlie", tags=["core", "edge"], capabilities=["search", "index"])
    await h.client.post(REGISTER, json=registration("delta"), headers=STRANGER)

    async def slugs(**params: Any) -> list[str]:
        response = await h.client.get(SERVICES, params=params, headers=A)
        assert response.status_code == 200, response.text
        return [s["slug"] for s in response.json()["data"]]

    assert await slugs() == ["alpha", "bravo", "charlie"]  # delta is pending, and not ours
    assert await slugs(tag="edge") == ["bravo", "charlie"]
    assert await slugs(capability="search", tag="core") == ["alpha", "charlie"]
    assert await slugs(q="FULL-TEXT") == ["alpha"]
    assert await slugs(status="pending") == []
    admin = await h.client.get(SERVICES, params={"status": "pending"}, headers=ADMIN)
    assert [s["slug"] for s in admin.json()["data"]] == ["delta"]

    first = (await h.client.get(SERVICES, params={"limit": 2}, headers=A)).json()
    assert [s["slug"] for s in first["data"]] == ["alpha", "bravo"]
    assert (first["meta"]["count"], first["meta"]["limit"]) == (2, 2)
    second = (
        await h.client.get(SERVICES, params={"limit": 2, "cursor": first["meta"]["next_cursor"]}, headers=A)
    ).json()
    assert [s["slug"] for s in second["data"]] == ["charlie"]
    assert "next_cursor" not in second["meta"]

    h.clock.advance(45)
    assert await slugs(status="degraded") == ["alpha", "bravo", "charlie"]
    assert await slugs(status="active") == []


async def test_get_and_versions_of_unknown_are_404(h: Harness) -> None:
    problem(await h.client.get(f"{SERVICES}/nobody", headers=A), 404, "service_not_found")
    problem(await h.client.get(f"{SERVICES}/nobody/versions", headers=A), 404, "service_not_found")
    problem(await h.client.get(SERVICES, params={"cursor": "!!!"}, headers=A), 422, "invalid_input")
