"""Discovery, admin decisions and authentication, through HTTP on every backend."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import ADMIN, STRANGER, A, B, Harness, registration
from tests.api.test_registry_routes import HEARTBEAT, REGISTER, SERVICES, problem

ENTRYPOINTS = "/api/v1/entrypoints"
ADMIN_SERVICES = "/api/v1/admin/registry/services"


async def test_entrypoints_of_active_services_by_capability_and_protocol(h: Harness) -> None:
    await h.register("alpha", capabilities=["search"])
    await h.register("bravo", capabilities=["index"], headers=B)
    await h.register(
        "charlie", capabilities=["search"], endpoints=[{"name": "rpc", "url": "grpc://c", "protocol": "grpc"}]
    )
    await h.client.post(REGISTER, json=registration("delta"), headers=STRANGER)  # pending: not discoverable
    await h.client.post(HEARTBEAT, json={"slug": "bravo", "status": "degraded"}, headers=B)  # degraded: neither

    everything = (await h.client.get(ENTRYPOINTS, headers=A)).json()
    assert [s["slug"] for s in everything["data"]] == ["alpha", "charlie"]
    assert everything["data"][0]["entrypoints"][0] == {
        "name": "api",
        "url": "http://alpha:8080/api",
        "protocol": "http",
        "method": "GET",
        "description": None,
    }
    grpc = (await h.client.get(ENTRYPOINTS, params={"capability": "search", "protocol": "grpc"}, headers=A)).json()
    assert [(s["slug"], [e["name"] for e in s["entrypoints"]]) for s in grpc["data"]] == [
        ("alpha", ["events"]),
        ("charlie", ["rpc"]),
    ]
    http = (await h.client.get(ENTRYPOINTS, params={"protocol": "http"}, headers=A)).json()
    assert [s["slug"] for s in http["data"]] == ["alpha"]

    one = (await h.client.get(f"{ENTRYPOINTS}/alpha", headers=A)).json()["data"]
    assert (one["slug"], one["capabilities"], len(one["entrypoints"])) == ("alpha", ["search"], 2)
    problem(await h.client.get(f"{ENTRYPOINTS}/delta", headers=A), 404, "service_not_found")
    problem(await h.client.get(f"{ENTRYPOINTS}/bravo", headers=A), 404, "service_not_found")

    h.clock.advance(31)  # everyone missed a window: nothing is active any more, sweep or not
    assert (await h.client.get(ENTRYPOINTS, headers=A)).json()["data"] == []


async def test_admin_approves_and_rejects_pending_services(h: Harness) -> None:
    await h.client.post(REGISTER, json=registration("newbie"), headers=STRANGER)
    await h.client.post(REGISTER, json=registration("spammy"), headers=STRANGER)
    problem(await h.client.post(f"{ADMIN_SERVICES}/newbie/approve", headers=STRANGER), 403, "access_denied")
    assert (await h.plugin.store.get("newbie")).status.value == "pending"

    h.clock.advance(100)
    approved = await h.client.post(f"{ADMIN_SERVICES}/newbie/approve", headers=ADMIN)
    assert approved.status_code == 200
    data = approved.json()["data"]
    assert (data["status"], data["approved"], data["next_heartbeat_due_at"]) == ("active", True, "2026-01-01T00:02:10Z")
    assert [s["slug"] for s in (await h.client.get(ENTRYPOINTS, headers=A)).json()["data"]] == ["newbie"]

    rejected = await h.client.post(f"{ADMIN_SERVICES}/spammy/reject", headers=ADMIN)
    assert rejected.json()["data"]["status"] == "rejected"
    problem(await h.client.post(f"{ADMIN_SERVICES}/spammy/approve", headers=ADMIN), 409, "illegal_transition")
    problem(await h.client.post(f"{ADMIN_SERVICES}/newbie/reject", headers=ADMIN), 409, "illegal_transition")
    problem(await h.client.post(f"{ADMIN_SERVICES}/nobody/approve", headers=ADMIN), 404, "service_not_found")
    problem(await h.client.post(REGISTER, json=registration("spammy"), headers=STRANGER), 409, "service_exists")
    assert (await h.plugin.store.get("spammy")).status.value == "rejected"


async def test_admin_force_deregisters_despite_dependents(h: Harness) -> None:
    await h.register()
    h.dependents["billing"] = ["subscription:1"]
    problem(await h.client.delete(f"{ADMIN_SERVICES}/billing", headers=A), 403, "access_denied")
    response = await h.client.delete(f"{ADMIN_SERVICES}/billing", headers=ADMIN)
    assert response.status_code == 204
    assert await h.plugin.store.get("billing") is None


async def test_writes_need_a_valid_key(h: Harness) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic a2V5LWE="}, {"X-Dev-Account": "x"}):
        response = await h.client.post(REGISTER, json=registration(), headers=headers)
        problem(response, 401, "authentication_required")
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert await h.plugin.store.get("billing") is None
    problem(await h.client.get(SERVICES), 401, "authentication_required")


async def test_public_reads_and_dev_mode_are_opt_in(make_harness: Any) -> None:
    h = await make_harness(public_reads=True, dev_mode=True)
    assert (await h.client.get(SERVICES)).status_code == 200
    dev = {"X-Dev-Account": "team-a"}
    assert (await h.client.post(REGISTER, json=registration(), headers=dev)).json()["data"]["status"] == "active"
    problem(await h.client.post(f"{ADMIN_SERVICES}/billing/reject", headers=dev), 403, "access_denied")
    dev_admin = {"X-Dev-Account": "root", "X-Dev-Role": "admin"}
    assert (await h.client.delete(f"{ADMIN_SERVICES}/billing", headers=dev_admin)).status_code == 204


async def test_auto_approval_by_slug_and_for_all(make_harness: Any) -> None:
    h = await make_harness(auto_approve_slugs=frozenset({"trusted"}))
    trusted = await h.client.post(REGISTER, json=registration("trusted"), headers=STRANGER)
    assert trusted.json()["data"]["status"] == "active"
    other = await h.client.post(REGISTER, json=registration("other"), headers=STRANGER)
    assert other.json()["data"]["status"] == "pending"
