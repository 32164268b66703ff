"""The five workflow topics reach a real subscriber on 127.0.0.1, from an app with provisioning and webhooks on.

Three workflows run through the routes: one succeeds after its callback step, one fails because the external service
reports a failure on the callback, one fails in a plain step (another tenant's). An admin subscription to the workflow
topics gets exactly their topics, each delivery signed (Standard Webhooks v1, verified with ``standardwebhooks``), its
``type`` and ``data`` those of the change log and of the catalog's payload, its tenant the workflow's; no callback
token (nor its hash, nor the credentials a callback delivered) is in any delivered body.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from standardwebhooks import Webhook

from litestar_registry.core.events import (
    CATALOG,
    ChangeEvent,
    Topic,
    WorkflowFailed,
    WorkflowStarted,
    WorkflowStepFailed,
    WorkflowStepWaiting,
    WorkflowSucceeded,
    payload_of,
)
from litestar_registry.provisioning.tokens import hash_token
from tests.provisioning.apps import ACME, ACME_KEY, GLOBEX, GLOBEX_KEY, PREFIX, provisioning_settings
from tests.provisioning.apps import App as Provisioning
from tests.provisioning.conftest import eventually
from tests.provisioning.receiver import Receiver
from tests.webhooks.apps import running_app
from tests.webhooks.subscriber import Subscriber

T = Topic
WORKFLOW_TOPICS = [
    T.WORKFLOW_STARTED,
    T.WORKFLOW_STEP_WAITING,
    T.WORKFLOW_STEP_FAILED,
    T.WORKFLOW_SUCCEEDED,
    T.WORKFLOW_FAILED,
]
SECRET_CREDENTIAL = "hunter2-credential"
ENDED = {"succeeded", "failed", "compensated", "cancelled"}
WAIT = timedelta(seconds=600)
"""The timeout of the ``provision`` definition's callback step (tests/provisioning/apps.py)."""


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_every_workflow_topic_arrives_signed_with_its_catalog_payload_and_no_token(
    store: str, tmp_path: Path
) -> None:
    tenants = {"acme": ACME_KEY, "globex": GLOBEX_KEY}
    async with (
        Receiver() as receiver,
        Subscriber() as subscriber,
        running_app(store, tmp_path, tenant_keys=tenants, **provisioning_settings()) as app,
    ):
        subscription = await app.subscribe(subscriber.url, topics=[str(topic) for topic in WORKFLOW_TOPICS])
        secret = subscription["secret"]
        assert subscription["topics"] == sorted(WORKFLOW_TOPICS)
        provisioning = Provisioning(client=app.client, plugin=app.plugin, clock=app.clock, receiver=receiver)
        await provisioning.register("billing")  # a service topic: not subscribed, not delivered

        async def callback(count: int, **report: Any) -> tuple[str, str]:
            """Answer the ``count``-th notification the callback step sent: (its workflow, the token it handed out)."""
            notice = (await receiver.wait_for(count))[count - 1].body
            body = {"callback_token": notice["callback_token"], **report}
            response = await app.client.post(f"{PREFIX}/callback", json=body)
            assert response.status_code == 200, response.text
            return notice["workflow_id"], notice["callback_token"]

        before = app.clock.now()
        succeeds = (await provisioning.start("billing"))["id"]
        credentials = {"password": SECRET_CREDENTIAL}
        first = await callback(1, status="succeeded", endpoint="https://db.example", credentials=credentials)
        refused = (await provisioning.start("billing"))["id"]
        second = await callback(2, status="failed", message="no capacity left")
        breaks = (await provisioning.start("billing", "quick", headers=GLOBEX, fail=True))["id"]
        assert [first[0], second[0]] == [succeeds, refused]
        tokens = [first[1], second[1]]

        async def ended(workflow_id: str, headers: dict[str, str]) -> str | None:
            status = (await provisioning.detail(workflow_id, headers=headers))["status"]
            return str(status) if status in ENDED else None

        assert await eventually(lambda: ended(succeeds, ACME)) == "succeeded"
        assert await eventually(lambda: ended(refused, ACME)) == "failed"
        assert await eventually(lambda: ended(breaks, GLOBEX)) == "failed"

        log = await app.plugin.store.read_events(subscription["start_after"], limit=100, topics=WORKFLOW_TOPICS)
        events = {event.id: event for event in log.items}
        assert topics_by_workflow(events.values()) == {
            succeeds: [T.WORKFLOW_STARTED, T.WORKFLOW_STEP_WAITING, T.WORKFLOW_SUCCEEDED],
            refused: [T.WORKFLOW_STARTED, T.WORKFLOW_STEP_WAITING, T.WORKFLOW_STEP_FAILED, T.WORKFLOW_FAILED],
            breaks: [T.WORKFLOW_STARTED, T.WORKFLOW_STEP_FAILED, T.WORKFLOW_FAILED],
        }

        async def all_delivered() -> list[dict[str, Any]] | None:  # the subscriber answered each; the store follows
            found = await app.deliveries(subscription["id"])
            done = len(found) == len(events) and all(item["state"] == "delivered" for item in found)
            return found if done else None

        delivered = await eventually(all_delivered)
        assert sorted(item["event_id"] for item in delivered) == sorted(events)
        received = subscriber.requests
        assert len(received) == len(events)  # each event once, and nothing else (no service topic)

        seen: dict[int, dict[str, Any]] = {}
        for request in received:
            payload = Webhook(secret).verify(request.body, request.headers)  # signature and timestamp
            assert request.headers["webhook-id"].endswith(f"_{payload['event_id']}")
            event = events[payload["event_id"]]
            topic = Topic(payload["type"])
            assert (topic, payload["subject"], payload["tenant"]) == (event.topic, event.subject, event.tenant)
            assert payload["data"] == msgspec.json.decode(msgspec.json.encode(event.data))  # the log's, as JSON
            assert set(payload["data"]) == set(CATALOG[topic].__struct_fields__)  # exactly the catalog's fields
            assert msgspec.convert(payload["data"], CATALOG[topic], strict=False) == payload_of(event)
            assert payload["data"]["tenant"] == payload["tenant"]
            seen[event.id] = payload
        assert sorted(seen) == sorted(events)

        by_workflow = {
            workflow_id: [msgspec.convert(seen[event.id]["data"], CATALOG[event.topic], strict=False) for event in got]
            for workflow_id, got in workflows_of(events.values()).items()
        }
        expires: dict[str, datetime] = {}
        for waits in (succeeds, refused):  # the callback step's 600 s, from when it started to wait
            waiting = by_workflow[waits][1]
            assert isinstance(waiting, WorkflowStepWaiting)
            assert waiting.expires_at is not None
            assert before + WAIT <= waiting.expires_at <= app.clock.now() + WAIT
            expires[waits] = waiting.expires_at
        provision = ("allocate", "external", "finish")
        acme = {"tenant": "acme", "service_slug": "billing", "definition": "provision"}
        ok = {**acme, "workflow_id": succeeds}
        assert by_workflow[succeeds] == [
            WorkflowStarted(**ok, steps=provision),
            WorkflowStepWaiting(**ok, step="external", expires_at=expires[succeeds]),
            WorkflowSucceeded(**ok),
        ]
        no = {**acme, "workflow_id": refused}
        assert by_workflow[refused] == [
            WorkflowStarted(**no, steps=provision),
            WorkflowStepWaiting(**no, step="external", expires_at=expires[refused]),
            WorkflowStepFailed(**no, step="external", error="no capacity left"),
            WorkflowFailed(**no, error="step 'external' failed: no capacity left"),
        ]
        broken = {"tenant": "globex", "service_slug": "billing", "definition": "quick", "workflow_id": breaks}
        assert by_workflow[breaks] == [
            WorkflowStarted(**broken, steps=("only",)),
            WorkflowStepFailed(**broken, step="only", error="PermanentStepError: told to fail"),
            WorkflowFailed(**broken, error="step 'only' failed: PermanentStepError: told to fail"),
        ]

        bodies = b"\n".join(request.body for request in received).decode()
        for token in tokens:
            assert token not in bodies
            assert hash_token(token) not in bodies
        assert "callback_token" not in bodies
        assert SECRET_CREDENTIAL not in bodies


def workflows_of(events: Iterable[ChangeEvent]) -> dict[str, list[ChangeEvent]]:
    """Each workflow's events, oldest first."""
    found: dict[str, list[ChangeEvent]] = defaultdict(list)
    for event in sorted(events, key=lambda event: event.id):
        found[event.subject].append(event)
    return dict(found)


def topics_by_workflow(events: Iterable[ChangeEvent]) -> dict[str, list[Topic]]:
    return {subject: [event.topic for event in got] for subject, got in workflows_of(events).items()}
