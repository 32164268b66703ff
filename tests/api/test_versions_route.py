"""``GET /registry/services/{slug}/versions`` on every backend: cursor pages like every list, and a bounded history."""

from __future__ import annotations

import base64
from typing import Any

from tests.api.conftest import A, Harness, MakeApp, registration

REGISTER = "/api/v1/registry/register"
VERSIONS = "/api/v1/registry/services/billing/versions"


async def _change_versions(h: Harness, count: int) -> None:
    for n in range(2, count + 2):
        h.clock.advance(1)
        response = await h.client.put(REGISTER, json=registration(version=f"{n}.0.0"), headers=A)
        assert response.status_code == 200, response.text


async def _walk(h: Harness, limit: int) -> tuple[list[str], list[dict[str, Any]]]:
    versions: list[str] = []
    metas: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = await h.client.get(VERSIONS, params=params, headers=A)
        assert response.status_code == 200, response.text
        body = response.json()
        versions += [entry["version"] for entry in body["data"]]
        metas.append(body["meta"])
        if "next_cursor" not in body["meta"]:
            return versions, metas
        params = {"limit": limit, "cursor": body["meta"]["next_cursor"]}


async def test_versions_come_a_page_at_a_time_oldest_first(h: Harness) -> None:
    await h.register()
    await _change_versions(h, 4)
    versions, metas = await _walk(h, 2)
    assert versions == ["1.0.0", "2.0.0", "3.0.0", "4.0.0", "5.0.0"]
    assert [(meta["count"], meta["limit"], "next_cursor" in meta) for meta in metas] == [
        (2, 2, True),
        (2, 2, True),
        (1, 2, False),
    ]
    everything = (await h.client.get(VERSIONS, headers=A)).json()
    assert [entry["version"] for entry in everything["data"]] == versions
    assert (everything["meta"]["limit"], "next_cursor" in everything["meta"]) == (50, False)
    assert everything["data"][1] == {
        "version": "2.0.0",
        "previous_version": "1.0.0",
        "recorded_at": "2026-01-01T00:00:01Z",
    }


async def test_the_history_keeps_the_newest_entries_up_to_the_limit(make_harness: MakeApp) -> None:
    h = await make_harness(history_limit=3)
    await h.register()
    await _change_versions(h, 5)
    versions, _ = await _walk(h, 2)
    assert versions == ["4.0.0", "5.0.0", "6.0.0"]
    assert [entry.version for entry in await h.plugin.store.versions("billing")] == versions


async def test_a_cursor_the_route_did_not_hand_out_is_a_422(h: Harness) -> None:
    await h.register()
    await h.register("zeta")
    listed = (await h.client.get("/api/v1/registry/services", params={"limit": 1}, headers=A)).json()
    page = await h.client.get(VERSIONS, params={"limit": 1}, headers=A)
    for cursor in (
        "not-base64!",
        base64.urlsafe_b64encode(b"billing").decode(),
        base64.urlsafe_b64encode(b"p:12345678901234567890").decode(),  # beyond what a store can compare
        base64.urlsafe_b64encode(b"p:-1").decode(),
        listed["meta"]["next_cursor"],  # a slug cursor of the services list
    ):
        response = await h.client.get(VERSIONS, params={"cursor": cursor}, headers=A)
        assert response.status_code == 422, (cursor, response.text)
        assert response.json()["code"] == "invalid_input"
    assert page.status_code == 200
    await h.client.put(REGISTER, json=registration(version="2.0.0"), headers=A)
    position = (await h.client.get(VERSIONS, params={"limit": 1}, headers=A)).json()["meta"]["next_cursor"]
    refused = await h.client.get("/api/v1/registry/services", params={"cursor": position}, headers=A)
    assert refused.status_code == 422  # and a version cursor is no slug cursor either
    assert (await h.client.get(VERSIONS, params={"limit": 0}, headers=A)).status_code in (400, 422)
