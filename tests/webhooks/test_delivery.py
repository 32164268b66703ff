"""Deliveries end to end, through the plugin and a real subscriber on 127.0.0.1.

- Every service topic reaches the subscriber, signed per Standard Webhooks v1 and verified with ``standardwebhooks``;
  during a rotation's grace period both secrets verify.
- A failing subscriber walks the whole schedule on the injected clock (the sleeps are instant and recorded) into a
  dead delivery; an admin lists it, reads its attempts, and replays it against a fixed subscriber: same webhook-id.
- A 410 disables the subscription; a 3xx is a failure and is not followed; ``Retry-After`` raises the next delay; an
  answer slower than the timeout is a failure; a huge answer is not read past the limit.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from litestar_registry.core.events import CATALOG, CATALOG_VERSION, Topic
from litestar_registry.provisioning.instances import is_executor_slug
from litestar_registry.webhooks.models import is_webhook_id
from litestar_registry.webhooks.signing import signature_headers
from tests.provisioning.conftest import KEY, eventually
from tests.webhooks.apps import ADMIN, ALL_SERVICE_TOPICS, PREFIX, SERVICE, STRANGER, App, running_app
from tests.webhooks.subscriber import Answer, Subscriber

ONE = "sqlite"
"""The store of the tests that need only one SQL backend."""
SCHEDULE = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def every_service_topic(app: App) -> None:
    """Make the registry append each of the nine service topics at least once, through its routes."""
    client = app.client
    await app.register("billing")  # registered
    changed = {"slug": "billing", "name": "Billing", "version": "1.1.0", "description": "now with invoices"}
    response = await client.put("/api/v1/registry/register", json=changed, headers=SERVICE)
    assert response.status_code == 200, response.text  # updated, version_changed
    await app.register("waiting", headers=STRANGER)  # registered (pending)
    assert (await client.post("/api/v1/admin/registry/services/waiting/approve", headers=ADMIN)).status_code == 200
    await app.register("refused", headers=STRANGER)
    assert (await client.post("/api/v1/admin/registry/services/refused/reject", headers=ADMIN)).status_code == 200
    heartbeat = "/api/v1/registry/heartbeat"
    assert (await client.post(heartbeat, json={"slug": "billing", "status": "degraded"}, headers=SERVICE)).is_success
    assert (await client.post(heartbeat, json={"slug": "billing", "status": "healthy"}, headers=SERVICE)).is_success
    await app.register("brief", ttl_seconds=1)
    app.clock.advance(4)  # past its three windows: the sweep expires it
    await app.plugin.registry.sweep()
    deregister = await client.request("DELETE", "/api/v1/registry/register", json={"slug": "billing"}, headers=SERVICE)
    assert deregister.status_code in (200, 204), deregister.text  # deregistered


async def test_every_service_topic_arrives_signed_and_verifiable(backend: str, tmp_path: Path) -> None:
    async with Subscriber() as subscriber, running_app(backend, tmp_path) as app:
        subscription = await app.subscribe(subscriber.url, description="everything")
        secret = subscription["secret"]
        assert subscription["topics"] == sorted(ALL_SERVICE_TOPICS)
        await every_service_topic(app)
        log = await app.plugin.store.read_events(subscription["start_after"], limit=100)
        # With PostgreSQL, the app instance keeps its own registration alive, and registers it again when the test's
        # cleanup removed it: real events, delivered like any other, but not the test's.
        events = [event for event in log.items if not is_executor_slug(event.subject)]
        expected = len(events)
        assert {event.topic for event in events} == set(ALL_SERVICE_TOPICS)
        await subscriber.wait_for(expected)
        await asyncio.sleep(0.2)  # nothing more than one request per event arrives
        received = [r for r in subscriber.requests if not is_executor_slug(r.json()["subject"])]
        assert len(received) == expected

        seen: dict[int, dict[str, Any]] = {}
        for request in received:
            payload = Webhook(secret).verify(request.body, request.headers)  # signature and timestamp
            assert request.method == "POST"
            assert request.path == "/hooks"
            assert request.headers["content-type"] == "application/json"
            assert is_webhook_id(request.headers["webhook-id"])
            assert request.headers["webhook-id"].endswith(f"_{payload['event_id']}")
            assert request.headers["webhook-signature"].count("v1,") == 1
            assert set(payload) == {"type", "timestamp", "data", "event_id", "catalog_version", "subject", "tenant"}
            assert payload["catalog_version"] == CATALOG_VERSION
            assert payload["timestamp"].endswith("Z")
            seen[payload["event_id"]] = payload
        assert sorted(seen) == [event.id for event in events]  # every event once, none other
        for event in events:
            payload = seen[event.id]
            assert (payload["type"], payload["subject"]) == (event.topic.value, event.subject)
            CATALOG[Topic(payload["type"])]  # a catalog topic
        with pytest.raises(WebhookVerificationError):
            Webhook(secret[:-8] + "AAAAAAA=").verify(received[0].body, received[0].headers)

        ours = {event.id for event in events}

        async def all_recorded() -> list[dict[str, Any]] | None:  # the subscriber answered; the store follows
            found = [item for item in await app.deliveries(subscription["id"]) if item["event_id"] in ours]
            return found if all(item["state"] == "delivered" for item in found) else None

        listed = await eventually(all_recorded)
        assert Counter(item["state"] for item in listed) == {"delivered": expected}
        attempts = await app.attempts(listed[0]["webhook_id"])
        assert [(a["attempt"], a["status_code"], a["outcome"]) for a in attempts] == [(1, 204, "delivered")]
        assert attempts[0]["latency_ms"] >= 0


async def test_a_subscription_gets_its_topics_only_and_only_events_after_it_was_created(tmp_path: Path) -> None:
    async with Subscriber() as subscriber, running_app("memory", tmp_path) as app:
        await app.register("early")
        subscription = await app.subscribe(subscriber.url, topics=["service.deregistered"])
        await app.register("late")
        gone = {"slug": "early"}
        assert (await app.client.request("DELETE", "/api/v1/registry/register", json=gone, headers=SERVICE)).is_success
        [request] = await subscriber.wait_for(1)
        assert request.json()["type"] == "service.deregistered"
        assert request.json()["event_id"] > subscription["start_after"]
        await asyncio.sleep(0.3)
        assert len(subscriber.requests) == 1


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_rotated_secret_and_its_predecessor_both_verify_during_the_grace_period(
    store: str, tmp_path: Path
) -> None:
    async with Subscriber() as subscriber, running_app(store, tmp_path) as app:
        subscription = await app.subscribe(subscriber.url)
        old = subscription["secret"]
        rotate = f"{PREFIX}/subscriptions/{subscription['id']}/rotate-secret"
        response = await app.client.post(rotate, json={}, headers=ADMIN)
        assert response.status_code == 200, response.text
        rotated = response.json()["data"]
        new = rotated["secret"]
        assert new != old
        assert new.startswith("whsec_")
        assert rotated["previous_secrets_valid_until"] is not None
        await app.register("billing")
        [request] = await subscriber.wait_for(1)
        assert len(request.headers["webhook-signature"].split(" ")) == 2  # the new secret's first
        for secret in (old, new):
            assert Webhook(secret).verify(request.body, request.headers)["type"] == "service.registered"

        # Once the grace period is over (24 h by default), only the new secret signs.
        app.clock.advance(86_400 + 1)
        await app.register("search")
        await subscriber.wait_for(2)
        late = subscriber.requests[1]
        assert len(late.headers["webhook-signature"].split(" ")) == 1
        # Signed at the clock's time, a day ahead of standardwebhooks' own clock: check the signature itself.
        at = datetime.fromtimestamp(int(late.headers["webhook-timestamp"]), UTC)
        body = late.body.decode()
        expected = signature_headers(webhook_id=late.headers["webhook-id"], at=at, body=body, secrets=[new])
        assert late.headers["webhook-signature"] == expected["webhook-signature"]

        # A rotation with an admin's own secret and no grace drops the old one at once.
        own = "whsec_" + "QUJD" * 8
        response = await app.client.post(rotate, json={"secret": own, "grace_seconds": 0}, headers=ADMIN)
        assert response.status_code == 200, response.text
        assert (response.json()["data"]["secret"], response.json()["data"]["previous_secrets_valid_until"]) == (
            own,
            None,
        )


@pytest.mark.parametrize(
    "store",
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("redis", marks=pytest.mark.redis)],
)
async def test_a_failing_subscriber_walks_the_schedule_into_a_dead_row_an_admin_replays(
    store: str, tmp_path: Path
) -> None:
    async with Subscriber.answering([], default=503) as subscriber, running_app(store, tmp_path) as app:
        subscription = await app.subscribe(subscriber.url, topics=["service.registered"])
        started = app.clock.now()
        await app.register("billing")
        [dead] = await app.delivery_when(subscription["id"], "dead")
        assert len(subscriber.requests) == len(SCHEDULE)
        assert app.sleeper.slept == list(SCHEDULE[1:])  # exactly the schedule, on the injected clock
        assert (app.clock.now() - started).total_seconds() >= sum(SCHEDULE)
        assert (dead["attempts"], dead["last_status_code"], dead["last_error"]) == (8, 503, "HTTP 503")
        assert {request.headers["webhook-id"] for request in subscriber.requests} == {dead["webhook_id"]}
        attempts = await app.attempts(dead["webhook_id"])
        assert [(a["run"], a["attempt"], a["status_code"], a["outcome"]) for a in attempts] == [
            (0, n, 503, "failed") for n in range(1, 9)
        ]
        assert all(a["error"] == "HTTP 503" and a["latency_ms"] is not None for a in attempts)
        assert await app.deliveries(subscription["id"], state="delivered") == []

        # The subscriber is fixed; the admin replays the dead row: a new run, the same webhook-id and body.
        subscriber.default = Answer(200)
        app.clock.set(datetime.now(UTC))  # back to real time, so that standardwebhooks accepts the timestamp
        response = await app.client.post(f"{PREFIX}/deliveries/{dead['webhook_id']}/replay", headers=ADMIN)
        assert response.status_code == 202, response.text
        assert (response.json()["data"]["state"], response.json()["data"]["run"]) == ("pending", 1)
        [delivered] = await app.delivery_when(subscription["id"], "delivered")
        assert (delivered["webhook_id"], delivered["run"], delivered["attempts"]) == (dead["webhook_id"], 1, 1)
        last = subscriber.requests[-1]
        assert last.headers["webhook-id"] == dead["webhook_id"]
        assert last.body == subscriber.requests[0].body
        assert Webhook(subscription["secret"]).verify(last.body, last.headers)["type"] == "service.registered"
        attempts = await app.attempts(dead["webhook_id"])
        assert [(a["run"], a["attempt"], a["status_code"]) for a in attempts][-2:] == [(0, 8, 503), (1, 1, 200)]

        # A delivered one replays too; one in flight cannot (409), an unknown one is 404.
        again = await app.client.post(f"{PREFIX}/deliveries/{dead['webhook_id']}/replay", headers=ADMIN)
        assert again.status_code == 202
        await eventually(lambda: _attempts_count(app, dead["webhook_id"], 10))
        unknown = await app.client.post(f"{PREFIX}/deliveries/msg_{'0' * 32}_1/replay", headers=ADMIN)
        assert unknown.status_code == 404


async def _attempts_count(app: App, webhook_id: str, count: int) -> bool:
    """Whether ``count`` attempts of the delivery have ended (and been recorded)."""
    return len([a for a in await app.attempts(webhook_id) if a["outcome"] is not None]) == count


async def test_a_410_disables_the_subscription_and_ends_the_delivery(subscriber: Subscriber, tmp_path: Path) -> None:
    subscriber.default = Answer(410)
    async with running_app(ONE, tmp_path) as app:
        subscription = await app.subscribe(subscriber.url)
        await app.register("billing")
        [dead] = await app.delivery_when(subscription["id"], "dead")
        assert (dead["attempts"], dead["last_status_code"]) == (1, 410)
        assert app.sleeper.slept == []
        shown = (await app.client.get(f"{PREFIX}/subscriptions/{subscription['id']}", headers=ADMIN)).json()["data"]
        assert shown["enabled"] is False
        assert shown["disabled_reason"].startswith("the subscriber answered 410 Gone")
        await app.register("search")  # nothing goes to a disabled subscription
        await asyncio.sleep(0.3)
        assert len(subscriber.requests) == 1
        replay = await app.client.post(f"{PREFIX}/deliveries/{dead['webhook_id']}/replay", headers=ADMIN)
        assert replay.status_code == 422  # enable it first
        enable = await app.client.post(f"{PREFIX}/subscriptions/{subscription['id']}/enable", headers=ADMIN)
        assert (enable.json()["data"]["enabled"], enable.json()["data"]["disabled_reason"]) == (True, None)


async def test_a_redirect_is_a_failure_and_is_not_followed(tmp_path: Path) -> None:
    answers = [Answer(302, headers={"location": "/elsewhere"}), Answer(307, headers={"location": "/elsewhere"})]
    async with Subscriber.answering(answers, default=204) as subscriber, running_app("memory", tmp_path) as app:
        subscription = await app.subscribe(subscriber.url)
        await app.register("billing")
        [delivered] = await app.delivery_when(subscription["id"], "delivered")
        assert [request.path for request in subscriber.requests] == ["/hooks"] * 3  # never /elsewhere
        assert app.sleeper.slept == [5.0, 300.0]
        attempts = await app.attempts(delivered["webhook_id"])
        assert [(a["status_code"], a["outcome"], a["error"]) for a in attempts] == [
            (302, "failed", "HTTP 302: redirects are not followed"),
            (307, "failed", "HTTP 307: redirects are not followed"),
            (204, "delivered", None),
        ]


async def test_retry_after_raises_the_next_delay_up_to_the_longest_one(tmp_path: Path) -> None:
    answers = [
        Answer(429, headers={"retry-after": "120"}),  # above the 5 s step: 120
        Answer(503, headers={"retry-after": "1"}),  # below the 300 s step: 300
        Answer(503, headers={"retry-after": "999999"}),  # capped at the longest delay
        Answer(503, headers={"retry-after": "Thu, 01 Jan 1970 00:00:00 GMT"}),  # in the past: the schedule
    ]
    async with Subscriber.answering(answers, default=204) as subscriber, running_app("memory", tmp_path) as app:
        subscription = await app.subscribe(subscriber.url)
        await app.register("billing")
        await app.delivery_when(subscription["id"], "delivered")
        assert app.sleeper.slept == [120.0, 300.0, 36000.0, 7200.0]
        assert len(subscriber.requests) == 5


async def test_an_answer_slower_than_the_timeout_is_a_failure(tmp_path: Path) -> None:
    answers = [Answer(204, delay=2.0)]
    async with (
        Subscriber.answering(answers, default=204) as subscriber,
        running_app("memory", tmp_path, webhooks_timeout_seconds=0.5) as app,
    ):
        subscription = await app.subscribe(subscriber.url)
        await app.register("billing")
        [delivered] = await app.delivery_when(subscription["id"], "delivered")
        first, second = await app.attempts(delivered["webhook_id"])
        assert (first["outcome"], first["status_code"], first["error"]) == ("failed", None, "no answer within 0.5 s")
        assert 400 <= first["latency_ms"] < 1500
        assert (second["outcome"], second["status_code"]) == ("delivered", 204)


async def test_a_huge_answer_is_not_read_past_the_limit(tmp_path: Path) -> None:
    huge = 200 * 1024 * 1024
    answers = [Answer(200, body_bytes=huge)]
    async with (
        Subscriber.answering(answers) as subscriber,
        running_app("memory", tmp_path, webhooks_max_response_bytes=500) as app,
    ):
        subscription = await app.subscribe(subscriber.url)
        await app.register("billing")
        [delivered] = await app.delivery_when(subscription["id"], "delivered")
        [attempt] = await app.attempts(delivered["webhook_id"])
        assert attempt["status_code"] == 200
        assert attempt["response_excerpt"] == "x" * 500  # all that was read
        await asyncio.sleep(0.5)
        assert subscriber.sent_bytes < huge // 10  # the connection was closed long before the subscriber was done


async def test_the_example_subscriber_verifies_every_delivery_and_acts_on_a_webhook_id_once(tmp_path: Path) -> None:
    """``example_app/subscriber.py``, which docs/webhooks.md shows, as the subscriber of a real delivery."""
    import socket

    import uvicorn

    from example_app import subscriber as example

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    async with running_app("sqlite", tmp_path) as app:
        subscription = await app.subscribe(f"http://127.0.0.1:{port}/hooks", topics=["service.registered"])
        server = uvicorn.Server(
            uvicorn.Config(example.create_app(subscription["secret"]), host="127.0.0.1", port=port, log_level="error")
        )
        serving = asyncio.create_task(server.serve())
        example.received.clear()
        try:
            await eventually(lambda: _true(server.started))
            await app.register("billing")
            [delivered] = await app.delivery_when(subscription["id"], "delivered")
            assert example.received[delivered["webhook_id"]]["subject"] == "billing"
            # A replay reaches it again: acknowledged (204), acted on once.
            replay = await app.client.post(f"{PREFIX}/deliveries/{delivered['webhook_id']}/replay", headers=ADMIN)
            assert replay.status_code == 202
            await eventually(lambda: _attempts_count(app, delivered["webhook_id"], 2))
            assert [a["status_code"] for a in await app.attempts(delivered["webhook_id"])] == [204, 204]
            assert list(example.received) == [delivered["webhook_id"]]
            # Anything not signed with its secret is refused.
            async with httpx.AsyncClient() as client:
                forged = await client.post(
                    f"http://127.0.0.1:{port}/hooks",
                    content=b'{"type":"service.deregistered"}',
                    headers={"webhook-id": "msg_forged", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
                )
            assert forged.status_code == 400
        finally:
            server.should_exit = True
            await serving


async def _true(value: bool) -> bool:
    return value


class GatedSleep:
    """A sleep that waits until the test opens the gate (and records what was asked)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await self.gate.wait()


async def test_a_retry_goes_to_the_new_url_and_disabling_ends_what_waits(tmp_path: Path) -> None:
    async with (
        Subscriber.answering([], default=503) as failing,
        Subscriber() as fixed,
        running_app("memory", tmp_path) as app,
    ):
        engine = app.plugin.webhooks.require()
        gated = GatedSleep()
        engine.sleep = gated
        first = await app.subscribe(failing.url, topics=["service.registered"])
        second = await app.subscribe(failing.url, topics=["service.registered"])
        await app.register("billing")
        await failing.wait_for(2)  # both first attempts failed; both deliveries wait for their next
        [waiting] = await app.delivery_when(first["id"], "retrying")
        await app.delivery_when(second["id"], "retrying")
        assert waiting["next_attempt_at"] is not None
        replay = await app.client.post(f"{PREFIX}/deliveries/{waiting['webhook_id']}/replay", headers=ADMIN)
        assert replay.status_code == 409  # still in flight

        patched = await app.client.patch(
            f"{PREFIX}/subscriptions/{first['id']}", json={"url": fixed.url}, headers=ADMIN
        )
        assert patched.status_code == 200
        disabled = await app.client.post(f"{PREFIX}/subscriptions/{second['id']}/disable", headers=ADMIN)
        assert disabled.status_code == 200
        [ended] = await app.deliveries(second["id"])
        assert (ended["state"], ended["last_error"]) == ("dead", "the subscription was disabled")

        gated.gate.set()
        [delivered] = await app.delivery_when(first["id"], "delivered")
        assert delivered["attempts"] == 2
        [request] = await fixed.wait_for(1)  # the retry went to the new URL
        assert request.headers["webhook-id"] == delivered["webhook_id"]
        await asyncio.sleep(0.3)
        assert len(failing.requests) == 2  # nothing more for the disabled one: its workflow was cancelled
        assert (await app.deliveries(second["id"]))[0]["attempts"] == 1


async def test_beside_a_redis_store_subscriptions_get_a_sqlite_file_of_their_own(tmp_path: Path) -> None:
    from sqlalchemy import make_url

    from litestar_registry import RegistryConfig
    from litestar_registry.durable import default_dbos_url
    from litestar_registry.store import create_store
    from litestar_registry.webhooks.service import WebhookService
    from litestar_registry.webhooks.store.sqlalchemy import SQLAlchemyWebhookStore

    store = create_store("redis://127.0.0.1:6379/2")  # never opened: only where things would live is asked
    config = RegistryConfig(store=store, webhooks=True, webhooks_keys=[KEY])
    service = WebhookService(config, None, store)  # type: ignore[arg-type]
    read_model, url = service._read_model_store()
    assert isinstance(read_model, SQLAlchemyWebhookStore)
    assert url == make_url("sqlite+aiosqlite:///registry-webhooks.db")
    assert default_dbos_url(url) == "sqlite:///registry-webhooks-dbos.sqlite"
    chosen = "postgresql+asyncpg://hooks@db/hooks"
    service = WebhookService(RegistryConfig(store=store, webhooks_database_url=chosen), None, store)  # type: ignore[arg-type]
    assert service._read_model_store()[1] == make_url(chosen)


async def test_a_secret_no_configured_key_opens_is_a_failed_attempt_that_sends_nothing(
    subscriber: Subscriber, tmp_path: Path
) -> None:
    from litestar_registry.provisioning.crypto import CredentialCipher

    async with running_app("memory", tmp_path, webhooks_retry_schedule=(0.0, 1.0)) as app:
        subscription = await app.subscribe(subscriber.url)
        app.plugin.webhooks.require().cipher = CredentialCipher([CredentialCipher.generate_key()])  # keys replaced
        await app.register("billing")
        [dead] = await app.delivery_when(subscription["id"], "dead")
        attempts = await app.attempts(dead["webhook_id"])
        assert [a["error"] for a in attempts] == [
            "not sent: sealed value cannot be opened with the configured keys"
        ] * 2
        assert subscriber.requests == []
