"""The framework-free parts of webhooks: the retry schedule, Retry-After, secrets, signatures, the state table, the
envelope and the ids. No server, no DBOS."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from litestar_registry.core.errors import IllegalTransition, InvalidInput
from litestar_registry.core.events import CATALOG_VERSION, ChangeEvent, Topic
from litestar_registry.webhooks.models import dbos_delivery_id, envelope, is_webhook_id, webhook_id
from litestar_registry.webhooks.schedule import DEFAULT_SCHEDULE, RetrySchedule, parse_retry_after
from litestar_registry.webhooks.signing import check_secret, new_secret, signature_headers
from litestar_registry.webhooks.states import (
    DELIVERY_TRANSITIONS,
    DeliveryEvent,
    DeliveryState,
    delivery_transition,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_the_default_schedule_is_the_issues() -> None:
    assert DEFAULT_SCHEDULE == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    schedule = RetrySchedule(jitter=0)
    assert schedule.attempts == 8
    key = "msg_x:0"
    assert schedule.delay_before(1, key=key) == 0
    assert [schedule.next_delay(n, key=key) for n in range(1, 9)] == [5, 300, 1800, 7200, 18000, 36000, 36000, None]


def test_jitter_stays_within_its_bounds_and_is_the_same_on_every_replay() -> None:
    schedule = RetrySchedule(jitter=0.1)
    for attempt in range(2, 9):
        base = DEFAULT_SCHEDULE[attempt - 1]
        delays = {schedule.delay_before(attempt, key=f"msg_{n}:0") for n in range(50)}
        assert all(base * 0.9 <= delay < base * 1.1 for delay in delays), delays
        assert len(delays) > 40  # spread, not one value
        assert schedule.delay_before(attempt, key="msg_7:0") == schedule.delay_before(attempt, key="msg_7:0")
    assert schedule.delay_before(1, key="any") == 0  # "at once" stays at once


def test_retry_after_is_a_minimum_capped_at_the_longest_delay() -> None:
    schedule = RetrySchedule(jitter=0)
    assert schedule.next_delay(1, key="k", retry_after=60) == 60  # above the 5 s step
    assert schedule.next_delay(1, key="k", retry_after=1) == 5  # below it: the schedule wins
    assert schedule.next_delay(1, key="k", retry_after=10**9) == 36000  # capped
    assert schedule.next_delay(8, key="k", retry_after=60) is None  # never an extra attempt


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Tue, 01 Dec 2026 12:01:30 GMT", 90.0),
        ("Tue, 01 Dec 2026 11:00:00 GMT", 0.0),  # in the past: no wait
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


@pytest.mark.parametrize(
    ("delays", "jitter"),
    [((), 0.0), ((0, -1), 0.0), ((0, float("nan")), 0.0), ((0,), 1.0), ((0,), -0.1), (tuple(range(51)), 0.0)],
)
def test_a_bad_schedule_is_refused(delays: tuple[float, ...], jitter: float) -> None:
    with pytest.raises(ValueError, match="expected"):
        RetrySchedule(delays=delays, jitter=jitter)


def test_a_new_secret_is_whsec_and_the_base64_of_32_random_bytes() -> None:
    secrets = {new_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
        assert check_secret(secret) == secret


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_" + base64.b64encode(b"x" * 23).decode(),  # too short
        "whsec_" + base64.b64encode(b"x" * 65).decode(),  # too long
        base64.b64encode(b"x" * 32).decode(),  # no prefix
        "whsec_" + base64.urlsafe_b64encode(b"\xfb" * 32).decode(),  # URL-safe alphabet
        "whsec_not base64!",
        "whsec_é" + "A" * 40,
    ],
)
def test_a_malformed_secret_is_refused_without_echoing_it(secret: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_secret(secret)
    assert secret not in caught.value.detail
    assert caught.value.extra["field"] == "secret"


def test_signatures_verify_with_standardwebhooks_for_each_secret() -> None:
    old, new = new_secret(), new_secret()
    now = datetime.now(UTC)
    body = '{"type":"service.registered"}'
    headers = signature_headers(webhook_id="msg_1", at=now, body=body, secrets=[new, old])
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert all(part.startswith("v1,") for part in headers["webhook-signature"].split(" "))
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers) == {"type": "service.registered"}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body + " ", headers)


def test_a_time_with_another_offset_is_signed_as_the_same_instant() -> None:
    """standardwebhooks reads any datetime as UTC; the registry converts first, so the offset changes nothing."""
    secret = new_secret()
    utc_now = datetime.now(UTC).replace(microsecond=0)
    elsewhere = utc_now.astimezone(timezone(timedelta(hours=-5)))
    body = "{}"
    signed_utc = signature_headers(webhook_id="msg_1", at=utc_now, body=body, secrets=[secret])
    signed_elsewhere = signature_headers(webhook_id="msg_1", at=elsewhere, body=body, secrets=[secret])
    assert signed_utc == signed_elsewhere
    assert Webhook(secret).verify(body, signed_elsewhere) == {}


def test_the_state_table_refuses_what_it_does_not_list() -> None:
    s, e = DeliveryState, DeliveryEvent
    assert delivery_transition(s.PENDING, e.FAIL) is s.RETRYING
    assert delivery_transition(s.RETRYING, e.SUCCEED) is s.DELIVERED
    assert delivery_transition(s.RETRYING, e.EXHAUST) is s.DEAD
    assert delivery_transition(s.PENDING, e.GONE) is s.DEAD
    assert delivery_transition(s.DEAD, e.REPLAY) is s.PENDING
    assert delivery_transition(s.DELIVERED, e.REPLAY) is s.PENDING
    for state in s:
        for event in e:
            if (state, event) not in DELIVERY_TRANSITIONS:
                with pytest.raises(IllegalTransition):
                    delivery_transition(state, event)
    assert {event for _, event in DELIVERY_TRANSITIONS} == set(e)  # every event moves something


def test_the_envelope_and_the_ids() -> None:
    event = ChangeEvent(
        id=42,
        topic=Topic.SERVICE_REGISTERED,
        occurred_at=datetime(2026, 12, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))),
        subject="billing",
        data={"slug": "billing"},
    )
    body = msgspec.json.decode(envelope(event))
    assert body == {
        "type": "service.registered",
        "timestamp": "2026-12-01T12:00:00Z",
        "data": {"slug": "billing"},
        "event_id": 42,
        "catalog_version": CATALOG_VERSION,
        "subject": "billing",
        "tenant": None,
    }
    subscription = "0193a0b1-1111-7222-8333-444455556666"
    found = webhook_id(subscription, 42)
    assert found == "msg_0193a0b1111172228333444455556666_42" == webhook_id(subscription, 42)
    assert is_webhook_id(found)
    assert not is_webhook_id(found + "\n")
    assert dbos_delivery_id(found, 0) != dbos_delivery_id(found, 1)


async def test_the_relay_says_so_when_the_log_is_behind_its_cursor(caplog: pytest.LogCaptureFixture) -> None:
    """A registry store emptied or restored from an older copy: the relay cannot tell which events were sent."""
    from litestar_registry.provisioning.crypto import CredentialCipher
    from litestar_registry.store.memory import MemoryServiceStore
    from litestar_registry.webhooks.engine import WebhookEngine
    from litestar_registry.webhooks.relay import Relay
    from litestar_registry.webhooks.store import MemoryWebhookStore

    store = MemoryWebhookStore()
    await store.advance_cursor(10)
    log = MemoryServiceStore()
    engine = WebhookEngine(store=store, log=log, cipher=CredentialCipher([CredentialCipher.generate_key()]))
    relay = Relay(engine, log)
    with caplog.at_level("ERROR", logger="litestar_registry.webhooks"):
        assert await relay.run_once() == 0
        assert await relay.run_once() == 0
    [record] = caplog.records
    assert "the change log ends at id 0, before the webhook relay's cursor (10)" in record.getMessage()
