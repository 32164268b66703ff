"""The provisioning routes over HTTP, on SQLite and PostgreSQL: start, list, read, status, callback, cancel, retry.

One app per backend serves the whole module (DBOS starts once per app); each test uses services of its own.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.provisioning.apps import ACME, ADMIN, GLOBEX, PREFIX, SERVICE, App, problem, running_app
from tests.provisioning.conftest import dbos_database, eventually
from tests.provisioning.receiver import Receiver

# One app per backend for the module: its tests stay on one xdist worker, so that it starts once.
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("provisioning-routes")]

SECRET = "s3cret-password-Zq9"


@pytest_asyncio.fixture(
    scope="module", loop_scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[App]:
    tmp_path: Path = tmp_path_factory.mktemp(request.param)
    async with Receiver() as receiver:
        if request.param == "postgres":
            async with (
                dbos_database() as dbos_url,
                running_app("postgres", tmp_path, receiver, provisioning_dbos_url=dbos_url) as running,
            ):
                yield running
        else:
            async with running_app("sqlite", tmp_path, receiver) as running:
                yield running


async def token_for(app: App, workflow_id: str) -> str:
    """The callback token the external service was sent for ``workflow_id``."""

    async def sent() -> str | None:
        for received in app.receiver.requests:
            if received.body and received.body.get("workflow_id") == workflow_id:
                return str(received.body["callback_token"])
        return None

    token: str = await eventually(sent)
    return token


async def settled(app: App, workflow_id: str, *statuses: str, headers: dict[str, str] = ACME) -> dict[str, Any]:
    """The workflow's detail once its status is one of ``statuses``."""

    async def check() -> dict[str, Any] | None:
        detail = await app.detail(workflow_id, headers)
        return detail if detail["status"] in statuses else None

    found: dict[str, Any] = await eventually(check)
    return found


def steps(detail: dict[str, Any]) -> dict[str, str]:
    return {step["name"]: step["status"] for step in detail["steps"]}


async def test_a_workflow_goes_from_start_to_callback_to_status(app: App) -> None:
    await app.register("orders")
    started = await app.start("orders", plan="pro")
    assert (started["status"], started["run"], started["definition"]) == ("pending", 0, "provision")
    assert "tenant" not in started

    token = await token_for(app, started["id"])
    notice = next(r for r in app.receiver.requests if r.body and r.body["workflow_id"] == started["id"])
    assert notice.body["callback_url"] == "https://registry.example/api/v1/provisioning/callback"
    assert notice.headers["idempotency-key"] == f"{started['id']}:external"
    waiting = await settled(app, started["id"], "waiting")
    assert steps(waiting) == {"allocate": "succeeded", "external": "waiting", "finish": "pending"}
    assert waiting["steps"][0]["outputs"] == {"database": "orders-db", "plan": "pro"}
    status = await app.client.get(f"{PREFIX}/status/orders", headers=ACME)
    assert (status.status_code, status.json()["data"]["id"], status.json()["data"]["status"]) == (
        200,
        started["id"],
        "waiting",
    )

    callback = {
        "callback_token": token,
        "status": "succeeded",
        "endpoint": "postgres://orders-db:5432",
        "credentials": {"password": SECRET},
        "message": "ready",
        "metadata": {"region": "eu"},
    }
    answer = await app.client.post(f"{PREFIX}/callback", json=callback)  # no Authorization: the token is enough
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {"workflow_id": started["id"], "step": "external", "status": "succeeded"}
    assert set(answer.json()["meta"]) == {"request_id"}

    done = await settled(app, started["id"], "succeeded")
    assert steps(done) == dict.fromkeys(["allocate", "external", "finish"], "succeeded")
    external = done["steps"][1]
    assert external["outputs"] == {
        "endpoint": "postgres://orders-db:5432",
        "credentials": "[redacted]",
        "message": "ready",
        "metadata": {"region": "eu"},
    }
    assert done["steps"][2]["outputs"] == {"ready": True, "endpoint": "postgres://orders-db:5432"}
    assert [step["attempts"] for step in done["steps"]] == [1, 1, 1]
    assert done["finished_at"] is not None

    status = await app.client.get(f"{PREFIX}/status/orders", headers=ACME)
    listed = await app.client.get(f"{PREFIX}/workflows", params={"service_slug": "orders"}, headers=ACME)
    assert status.json()["data"]["status"] == "succeeded"
    assert [item["id"] for item in listed.json()["data"]] == [started["id"]]
    for body in (answer.text, status.text, listed.text, json.dumps(done)):
        assert SECRET not in body  # credentials never leave in a read

    again = await app.client.post(f"{PREFIX}/callback", json=callback)
    problem(again, 409, "callback_token_used")


async def test_a_start_names_a_live_service_a_known_definition_and_inputs_it_takes(app: App) -> None:
    await app.register("ledger")
    body = {"service_slug": "nowhere", "definition": "provision"}
    problem(await app.client.post(f"{PREFIX}/workflows", json=body, headers=ACME), 404, "service_not_found")
    body = {"service_slug": "ledger", "definition": "unheard-of"}
    unknown = problem(await app.client.post(f"{PREFIX}/workflows", json=body, headers=ACME), 422, "unknown_definition")
    assert unknown["errors"] == [{"field": "definition", "message": unknown["detail"]}]
    body = {"service_slug": "ledger", "definition": "typed", "inputs": {"plan": 3}}
    typed = problem(await app.client.post(f"{PREFIX}/workflows", json=body, headers=ACME), 422, "invalid_input")
    assert typed["errors"][0]["field"] == "inputs"
    body = {"service_slug": "ledger", "definition": "quick", "tenant": "globex"}  # the tenant is never the body's
    problem(await app.client.post(f"{PREFIX}/workflows", json=body, headers=ACME), 422, "invalid_input")
    body = {"service_slug": "Not A Slug", "definition": "quick"}
    problem(await app.client.post(f"{PREFIX}/workflows", json=body, headers=ACME), 422, "invalid_input")
    listed = await app.client.get(f"{PREFIX}/workflows", params={"service_slug": "ledger"}, headers=ACME)
    assert listed.json()["data"] == []  # nothing was recorded

    typed_ok = await app.start("ledger", "typed", plan="pro")
    assert typed_ok["inputs"] == {"plan": "pro", "size": 1}  # as the definition's inputs type reads them


async def test_lists_filter_and_page_as_the_registry_lists_do(app: App) -> None:
    await app.register("paged")
    await app.register("other")
    ids = [(await app.start("paged", "quick"))["id"] for _ in range(3)]
    failed = await app.start("paged", "quick", fail=True)
    await app.start("other", "quick")
    for workflow_id in ids:
        await settled(app, workflow_id, "succeeded")
    await settled(app, failed["id"], "failed")

    first = await app.client.get(f"{PREFIX}/workflows", params={"service_slug": "paged", "limit": 2}, headers=ACME)
    meta = first.json()["meta"]
    assert [item["id"] for item in first.json()["data"]] == [failed["id"], ids[2]]  # newest first
    assert (meta["count"], meta["limit"]) == (2, 2)
    params = {"service_slug": "paged", "limit": 2, "cursor": meta["next_cursor"]}
    second = await app.client.get(f"{PREFIX}/workflows", params=params, headers=ACME)
    assert [item["id"] for item in second.json()["data"]] == [ids[1], ids[0]]
    assert "next_cursor" not in second.json()["meta"]

    params = {"service_slug": "paged", "status": "failed"}
    only_failed = await app.client.get(f"{PREFIX}/workflows", params=params, headers=ACME)
    assert [item["id"] for item in only_failed.json()["data"]] == [failed["id"]]
    assert only_failed.json()["data"][0]["error"] == "step 'only' failed: PermanentStepError: told to fail"
    params = {"service_slug": "paged", "status": ["failed", "succeeded"]}
    both = await app.client.get(f"{PREFIX}/workflows", params=params, headers=ACME)
    assert len(both.json()["data"]) == 4
    everything = await app.client.get(f"{PREFIX}/workflows", headers=ACME)
    assert {item["service_slug"] for item in everything.json()["data"]} >= {"paged", "other"}

    for cursor in ("not-a-cursor", "YmlsbGluZw"):  # garbage, and a slug cursor of the services list
        bad = await app.client.get(f"{PREFIX}/workflows", params={"cursor": cursor}, headers=ACME)
        assert problem(bad, 422, "invalid_input")["errors"][0]["field"] == "cursor"
    bad_status = await app.client.get(f"{PREFIX}/workflows", params={"status": "sleeping"}, headers=ACME)
    assert problem(bad_status, 422, "invalid_input")["errors"][0]["field"] == "status"


async def test_another_tenants_workflow_answers_404_on_every_route(app: App) -> None:
    await app.register("shared-db")
    waiting = await app.start("shared-db")
    await settled(app, waiting["id"], "waiting")
    failed = await app.start("shared-db", "quick", fail=True)
    await settled(app, failed["id"], "failed")
    workflow = f"{PREFIX}/workflows/{waiting['id']}"

    problem(await app.client.get(workflow, headers=GLOBEX), 404, "workflow_not_found")
    problem(await app.client.post(f"{workflow}/cancel", headers=GLOBEX), 404, "workflow_not_found")
    retry = await app.client.post(f"{PREFIX}/workflows/{failed['id']}/retry", headers=GLOBEX)
    problem(retry, 404, "workflow_not_found")
    problem(await app.client.get(f"{PREFIX}/status/shared-db", headers=GLOBEX), 404, "workflow_not_found")
    listed = await app.client.get(f"{PREFIX}/workflows", headers=GLOBEX)
    assert waiting["id"] not in {item["id"] for item in listed.json()["data"]}
    filtered = await app.client.get(f"{PREFIX}/workflows", params={"service_slug": "shared-db"}, headers=GLOBEX)
    assert filtered.json()["data"] == []

    # Nothing happened to it: acme still sees it waiting, and globex's own workflow is globex's alone.
    assert (await app.detail(waiting["id"]))["status"] == "waiting"
    assert (await app.detail(failed["id"]))["status"] == "failed"
    own = await app.start("shared-db", "quick", headers=GLOBEX)
    problem(await app.client.get(f"{PREFIX}/workflows/{own['id']}", headers=ACME), 404, "workflow_not_found")
    status = await app.client.get(f"{PREFIX}/status/shared-db", headers=GLOBEX)
    assert status.json()["data"]["id"] == own["id"]
    await app.client.post(f"{workflow}/cancel", headers=ACME)


async def test_cancel_stops_the_wait_and_retry_runs_the_rest_again(app: App) -> None:
    await app.register("cache")
    started = await app.start("cache")
    first_token = await token_for(app, started["id"])
    await settled(app, started["id"], "waiting")

    cancelled = await app.client.post(f"{PREFIX}/workflows/{started['id']}/cancel", headers=ACME)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["data"]["status"] == "cancelled"
    detail = await app.detail(started["id"])
    assert steps(detail) == {"allocate": "succeeded", "external": "cancelled", "finish": "cancelled"}
    late = await app.client.post(f"{PREFIX}/callback", json={"callback_token": first_token, "status": "succeeded"})
    problem(late, 409, "callback_token_used")  # its wait stopped with the cancel
    again = await app.client.post(f"{PREFIX}/workflows/{started['id']}/cancel", headers=ACME)
    problem(again, 409, "illegal_transition")

    retried = await app.client.post(f"{PREFIX}/workflows/{started['id']}/retry", headers=ACME)
    assert retried.status_code == 200, retried.text
    assert (retried.json()["data"]["status"], retried.json()["data"]["run"]) == ("pending", 1)
    await settled(app, started["id"], "waiting")
    tokens = [r.body["callback_token"] for r in app.receiver.requests if r.body["workflow_id"] == started["id"]]
    assert len(tokens) == 2  # the retry handed out a new token; `allocate` kept its outputs and did not run again
    answer = await app.client.post(f"{PREFIX}/callback", json={"callback_token": tokens[1], "status": "succeeded"})
    assert answer.status_code == 200, answer.text
    done = await settled(app, started["id"], "succeeded")
    assert [step["attempts"] for step in done["steps"]] == [1, 2, 1]
    problem(await app.client.post(f"{PREFIX}/workflows/{started['id']}/retry", headers=ACME), 409, "illegal_transition")


async def test_a_callback_needs_a_live_token_and_a_valid_body(app: App) -> None:
    await app.register("search")
    started = await app.start("search")
    token = await token_for(app, started["id"])
    await settled(app, started["id"], "waiting")

    unknown = await app.client.post(f"{PREFIX}/callback", json={"callback_token": "x" * 43, "status": "succeeded"})
    problem(unknown, 404, "callback_token_unknown")
    bad_status = await app.client.post(f"{PREFIX}/callback", json={"callback_token": token, "status": "done"})
    assert problem(bad_status, 422, "invalid_input")["errors"][0]["field"] == "status"
    missing = await app.client.post(f"{PREFIX}/callback", json={"status": "succeeded"})
    assert problem(missing, 422, "invalid_input")["errors"][0]["field"] == "callback_token"
    nul = {"callback_token": token, "status": "succeeded", "message": "a\u0000b"}
    problem(await app.client.post(f"{PREFIX}/callback", json=nul), 422, "invalid_input")

    app.clock.advance(601)  # past the step's 600 s timeout: the token expired with it
    expired = await app.client.post(f"{PREFIX}/callback", json={"callback_token": token, "status": "succeeded"})
    problem(expired, 410, "callback_token_expired")
    await app.client.post(f"{PREFIX}/workflows/{started['id']}/cancel", headers=ACME)


async def test_a_failed_callback_fails_the_workflow(app: App) -> None:
    await app.register("mail")
    started = await app.start("mail")
    token = await token_for(app, started["id"])
    body = {"callback_token": token, "status": "failed", "message": "quota exceeded"}
    assert (await app.client.post(f"{PREFIX}/callback", json=body)).status_code == 200
    failed = await settled(app, started["id"], "failed")
    assert failed["steps"][1]["error"] == "quota exceeded"
    assert steps(failed) == {"allocate": "succeeded", "external": "failed", "finish": "skipped"}


async def test_a_service_with_a_running_or_waiting_workflow_is_not_deregistered(app: App) -> None:
    await app.register("queue")
    started = await app.start("queue")
    token = await token_for(app, started["id"])
    await settled(app, started["id"], "waiting")
    refused = await app.client.request("DELETE", "/api/v1/registry/register", json={"slug": "queue"}, headers=SERVICE)
    assert problem(refused, 409, "service_conflict")["dependents"] == ["provisioning: 1 active workflow(s)"]
    answer = await app.client.post(f"{PREFIX}/callback", json={"callback_token": token, "status": "succeeded"})
    assert answer.status_code == 200, answer.text
    await settled(app, started["id"], "succeeded")
    gone = await app.client.request("DELETE", "/api/v1/registry/register", json={"slug": "queue"}, headers=SERVICE)
    assert gone.status_code == 204, gone.text


async def test_only_a_tenants_credential_reaches_the_tenant_routes(app: App) -> None:
    await app.register("vault")
    zero = "00000000-0000-7000-8000-000000000000"
    routes = [
        ("POST", f"{PREFIX}/workflows", {"service_slug": "vault", "definition": "quick"}),
        ("GET", f"{PREFIX}/workflows", None),
        ("GET", f"{PREFIX}/workflows/{zero}", None),
        ("GET", f"{PREFIX}/status/vault", None),
        ("POST", f"{PREFIX}/workflows/{zero}/cancel", None),
        ("POST", f"{PREFIX}/workflows/{zero}/retry", None),
    ]
    for method, path, body in routes:
        anonymous = await app.client.request(method, path, json=body)
        assert problem(anonymous, 401, "authentication_required"), (method, path)
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        for headers in (SERVICE, ADMIN):  # no tenant in these credentials
            problem(await app.client.request(method, path, json=body, headers=headers), 403, "access_denied")
    for path in (f"{PREFIX}/workflows/not-a-uuid", f"{PREFIX}/workflows/{zero}"):
        problem(await app.client.get(path, headers=ACME), 404, "workflow_not_found")
    problem(await app.client.get(f"{PREFIX}/status/NOT_A_SLUG", headers=ACME), 404, "workflow_not_found")


async def test_the_instances_slugs_are_reserved(app: App) -> None:
    body = {"slug": "registry-executor-0123456789abcdef01234567", "name": "Impostor", "version": "1"}
    for headers in (SERVICE, ADMIN):
        refused = await app.client.post("/api/v1/registry/register", json=body, headers=headers)
        assert "reserved" in problem(refused, 403, "access_denied")["detail"]


async def test_json_nested_too_deep_is_a_bad_request_not_a_crash(app: App) -> None:
    deep = "[" * 3000 + "]" * 3000
    bodies = {
        f"{PREFIX}/callback": '{"callback_token": "t", "status": "succeeded", "metadata": {"a": ' + deep + "}}",
        f"{PREFIX}/workflows": '{"service_slug": "deep", "definition": "quick", "inputs": {"a": ' + deep + "}}",
    }
    for path, body in bodies.items():
        answer = await app.client.post(path, content=body, headers={**ACME, "Content-Type": "application/json"})
        problem(answer, 400, "bad_request")


async def test_options_lists_every_method_of_each_provisioning_path(app: App) -> None:
    expected = {
        f"{PREFIX}/workflows": "GET, OPTIONS, POST",
        f"{PREFIX}/workflows/wf-unknown": "GET, OPTIONS",
        f"{PREFIX}/workflows/wf-unknown/cancel": "OPTIONS, POST",
        f"{PREFIX}/callback": "OPTIONS, POST",
        f"{PREFIX}/status/billing": "GET, OPTIONS",
    }
    for path, allow in expected.items():
        answer = await app.client.options(path)
        assert answer.status_code == 204, (path, answer.text)
        assert answer.headers["allow"] == allow, path
