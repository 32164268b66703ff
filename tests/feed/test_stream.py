"""``GET /api/v1/registry/stream`` over a real HTTP server: what an EventSource client sees, on every backend."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec
import pytest

from litestar_registry.core.events import CATALOG, ChangeEvent, Topic, payload_of
from tests.api.conftest import ADMIN, A, B, registration
from tests.feed.conftest import REGISTER, STREAM, Event, EventReader, Live, MakeLive

MEMORY_ONLY = pytest.mark.parametrize("backend", ["memory"])
"""For what does not depend on the store: authentication, validation, pings."""


def envelope(event: Event) -> dict[str, Any]:
    """The JSON envelope of an SSE event, checked against the catalog: its id and topic match the SSE fields."""
    assert event.data is not None
    body = json.loads(event.data)
    assert set(body) == {"id", "topic", "occurred_at", "subject", "tenant", "data"}
    assert (str(body["id"]), body["topic"]) == (event.id, event.event)
    payload = payload_of(msgspec.convert(body, ChangeEvent))
    assert isinstance(payload, CATALOG[Topic(body["topic"])])
    return dict(body)


async def topics_until(reader: EventReader, count: int) -> list[tuple[int, str, str]]:
    """``(id, topic, subject)`` of the next ``count`` events."""
    found = []
    for _ in range(count):
        body = envelope(await reader.event())
        found.append((body["id"], body["topic"], body["subject"]))
    return found


async def test_a_stream_sees_registration_update_degradation_and_deregistration(make_live: MakeLive) -> None:
    live: Live = await make_live()
    async with live.stream() as reader:
        start = await reader.opened()
        await live.register("billing")
        registered = envelope(await reader.event())
        assert registered["id"] > start
        assert (registered["topic"], registered["subject"], registered["tenant"]) == (
            "service.registered",
            "billing",
            None,
        )
        assert registered["data"]["status"] == "active"
        assert registered["data"]["account"] == "team-a"
        assert registered["data"]["base_url"] == "http://billing:8080"

        changed = registration("billing", base_url="http://billing:9090")
        assert (await live.client.put(REGISTER, json=changed, headers=A)).status_code == 200
        updated = envelope(await reader.event())
        assert (updated["topic"], updated["data"]["base_url"]) == ("service.updated", "http://billing:9090")
        assert updated["id"] > registered["id"]

        live.clock.advance(31)  # one TTL window (30 s) missed
        await live.plugin.registry.sweep()
        degraded = envelope(await reader.event())
        assert (degraded["topic"], degraded["data"]["previous_status"]) == ("service.degraded", "active")
        assert degraded["data"]["status"] == "degraded"

        gone = await live.client.request("DELETE", REGISTER, json={"slug": "billing"}, headers=A)
        assert gone.status_code == 204
        deregistered = envelope(await reader.event())
        assert (deregistered["topic"], deregistered["data"]["by"]) == ("service.deregistered", "team-a")
        assert [registered["id"], updated["id"], degraded["id"], deregistered["id"]] == sorted(
            {registered["id"], updated["id"], degraded["id"], deregistered["id"]}
        )


async def test_topic_and_service_filters(make_live: MakeLive) -> None:
    live = await make_live()
    by_topic = live.stream(topic=["service.deregistered", "service.updated"])
    by_service = live.stream(service="billing")
    async with by_topic as topics, by_service as billing:
        await topics.opened()
        await billing.opened()
        await live.register("billing")
        await live.register("ledger")
        changed = registration("ledger", version="2.0.0")
        assert (await live.client.put(REGISTER, json=changed, headers=A)).status_code == 200
        for slug in ("ledger", "billing"):
            response = await live.client.request("DELETE", REGISTER, json={"slug": slug}, headers=A)
            assert response.status_code == 204
        assert [(topic, subject) for _, topic, subject in await topics_until(topics, 3)] == [
            ("service.updated", "ledger"),
            ("service.deregistered", "ledger"),
            ("service.deregistered", "billing"),
        ]
        assert [(topic, subject) for _, topic, subject in await topics_until(billing, 2)] == [
            ("service.registered", "billing"),
            ("service.deregistered", "billing"),
        ]


async def test_a_reconnect_with_last_event_id_misses_nothing(make_live: MakeLive) -> None:
    live = await make_live()
    async with live.stream() as reader:
        await reader.opened()
        for index in range(5):
            await live.register(f"svc-{index}")
        seen = await topics_until(reader, 3)
    last_seen = seen[-1][0]
    for index in range(5, 8):  # made while no stream is open
        await live.register(f"svc-{index}")
    async with live.stream(headers={**A, "Last-Event-ID": str(last_seen)}, after=0) as reader:
        assert await reader.opened() == last_seen  # the header wins over ?after=
        missed = await topics_until(reader, 5)
        assert [subject for _, _, subject in missed] == [f"svc-{index}" for index in range(3, 8)]
        ids = [last_seen] + [event_id for event_id, _, _ in missed]
        assert ids == sorted(set(ids))
        await live.register("svc-8")  # then it goes live
        assert (await topics_until(reader, 1))[0][2] == "svc-8"
        await asyncio.sleep(0.1)
    all_ids = [event_id for event_id, _, _ in seen + missed]
    assert len(all_ids) == len(set(all_ids)) == 8


async def test_after_replays_from_the_start_and_a_trimmed_log_says_gap(make_live: MakeLive) -> None:
    live = await make_live()
    for index in range(4):
        await live.register(f"svc-{index}")
    async with live.stream(after=0) as reader:
        assert await reader.opened() == 0
        assert [subject for _, _, subject in await topics_until(reader, 4)] == [f"svc-{i}" for i in range(4)]
    page = await live.plugin.store.read_events(0, limit=10)
    first, second = page.items[0].id, page.items[1].id
    await live.plugin.store.trim_events(keep_after=second)  # retention dropped the first two events
    async with live.stream(after=first - 1) as reader:
        assert await reader.opened() == second
        gap = await reader.event()
        assert (gap.event, gap.id) == ("gap", str(second))
        assert json.loads(gap.data or "") == {"after": first - 1, "resume_after": second, "reason": "retention"}
        assert [subject for _, _, subject in await topics_until(reader, 2)] == ["svc-2", "svc-3"]
    async with live.stream(after=page.last_id + 100) as reader:  # a cursor from another log
        assert await reader.opened() == page.last_id
        gap = await reader.event()
        assert json.loads(gap.data or "")["reason"] == "unknown"
        await live.register("svc-4")
        assert (await topics_until(reader, 1))[0][2] == "svc-4"


async def test_pending_services_are_shown_only_to_their_account_and_admins(make_live: MakeLive) -> None:
    live = await make_live()
    async with live.stream(headers=A) as team_a, live.stream(headers=B) as team_b, live.stream(headers=ADMIN) as ops:
        for reader in (team_a, team_b, ops):
            await reader.opened()
        await live.register("queued", headers=B)  # team-b is not auto-approved: pending
        await live.register("open")  # team-a's: active
        assert [s for _, _, s in await topics_until(team_b, 2)] == ["queued", "open"]
        assert [s for _, _, s in await topics_until(ops, 2)] == ["queued", "open"]
        assert [(t, s) for _, t, s in await topics_until(team_a, 1)] == [("service.registered", "open")]
        assert (await live.client.post("/api/v1/admin/registry/services/queued/approve", headers=ADMIN)).is_success
        assert [(t, s) for _, t, s in await topics_until(team_a, 1)] == [("service.approved", "queued")]


@MEMORY_ONLY
async def test_quiet_streams_get_comment_pings(make_live: MakeLive) -> None:
    live = await make_live(feed_ping_interval_seconds=0.2)
    async with live.stream() as reader:
        await reader.opened()
        ping = await reader.next(within=2)
        assert (ping.event, ping.data, ping.comments) == (None, None, ["ping"])


@MEMORY_ONLY
async def test_the_stream_is_closed_by_default(make_live: MakeLive) -> None:
    live = await make_live()
    for headers in ({}, {"Authorization": "Bearer not-a-key-of-ours-at-all"}, {"Authorization": "Basic eDp5"}):
        response = await live.client.get(STREAM, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"].startswith("application/problem+json")
    assert live.hub.watchers == 0


@MEMORY_ONLY
async def test_bad_filters_and_cursors_are_a_422(make_live: MakeLive) -> None:
    live = await make_live()
    for params, headers in [
        ({"topic": "service.nope"}, A),
        ({"topic": ["service.registered", "service.nope"]}, A),
        ({"service": "Not A Slug"}, A),
        ({"after": "-1"}, A),
        ({"after": "x"}, A),
        ({"after": ["1", "2"]}, A),
        ({}, {**A, "Last-Event-ID": "yesterday"}),
        ({}, {**A, "Last-Event-ID": "-5"}),
    ]:
        response = await live.client.get(STREAM, headers=headers, params=params)
        assert response.status_code == 422, (params, headers, response.text)
        assert response.json()["code"] == "invalid_input"
    assert live.hub.watchers == 0


@MEMORY_ONLY
async def test_public_reads_open_the_stream_without_a_key(make_live: MakeLive) -> None:
    live = await make_live(public_reads=True)
    async with live.stream(headers={}) as reader:
        await reader.opened()
        await live.register("billing")
        assert (await topics_until(reader, 1))[0][2] == "billing"


@MEMORY_ONLY
async def test_a_stream_with_a_lifetime_ends_and_its_client_resumes(make_live: MakeLive) -> None:
    live = await make_live(feed_stream_max_seconds=0.3)
    async with live.stream() as reader:
        await reader.opened()
        await live.register("billing")
        seen = await reader.event()
        with pytest.raises(EOFError):
            await reader.next(within=2)  # ends by itself, after 0.3 s
    await live.register("ledger")
    async with live.stream(headers={**A, "Last-Event-ID": seen.id or ""}) as reader:
        await reader.opened()
        assert (await topics_until(reader, 1))[0][2] == "ledger"
