"""Generated request bodies (polyfactory, seeded: see ``tests/factories.py``) through HTTP on every backend.

Properties: any valid registration is stored and shown exactly as sent, and re-sending it changes nothing; any valid
heartbeat's report is stored exactly as sent, and a new version lands in the history; any body made invalid in one
field is a 422 naming that field and stores nothing. Each test runs one app and loops over a dozen payloads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from random import Random
from typing import Any

import msgspec
import pytest

from litestar_registry.api.schemas import HeartbeatRequest, RegistrationRequest
from litestar_registry.core.clock import utc
from litestar_registry.core.models import HealthReport, ServiceQuery
from tests.api.conftest import A, Harness, registration
from tests.api.test_registry_routes import HEARTBEAT, REGISTER, SERVICES, problem
from tests.factories import (
    SEED,
    HeartbeatRequestFactory,
    RegistrationRequestFactory,
    distinct_registrations,
    reseed,
    to_body,
)

ENTRYPOINTS = "/api/v1/entrypoints"
DEFAULT_TTL = 30.0
EXPIRY_WINDOWS = 3
REGISTRATION_FIELDS = tuple(field.name for field in msgspec.structs.fields(RegistrationRequest))
Body = dict[str, Any]


@pytest.fixture(autouse=True)
def rng() -> Random:
    """Reseed the factories for every test, and a generator of the same seed for the test's own choices."""
    reseed()
    return Random(SEED)


def canonical(value: Any) -> bytes:
    """JSON with sorted keys: ``1``, ``1.0`` and ``True`` differ (``==`` says they are equal), key order does not."""
    return msgspec.json.encode(value, order="sorted")


def assert_same(actual: Any, expected: Any) -> None:
    assert actual == expected
    assert canonical(actual) == canonical(expected)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def expected_view(request: RegistrationRequest) -> Body:
    """The 13 registration fields as the registry must show them: defaults filled in, the TTL a float."""
    view: Body = msgspec.to_builtins(request)
    view["ttl_seconds"] = DEFAULT_TTL if request.ttl_seconds is None else float(request.ttl_seconds)
    return view


def registration_fields(data: Body) -> Body:
    return {name: data[name] for name in REGISTRATION_FIELDS}


def schema_valid(body: Body, model: type[Any]) -> Any:
    """Decode ``body`` with the route's own schema: the generators must never make what the server may refuse."""
    return msgspec.json.decode(msgspec.json.encode(body), type=model)


def matches_text(request: RegistrationRequest, needle: str) -> bool:
    """The ``q`` filter's documented meaning: case-insensitive substring of slug, name or description."""
    return any(needle.casefold() in text.casefold() for text in (request.slug, request.name, request.description or ""))


async def listed(h: Harness, **params: str) -> list[str]:
    response = await h.client.get(SERVICES, params={**params, "limit": "500"}, headers=A)
    assert response.status_code == 200, response.text
    return [service["slug"] for service in response.json()["data"]]


async def test_generated_registrations_are_shown_as_sent_and_reregister_idempotently(h: Harness, rng: Random) -> None:
    assert len(REGISTRATION_FIELDS) == 13
    requests = distinct_registrations(12)
    bodies: dict[str, Body] = {}
    created: dict[str, Body] = {}
    for request in requests:
        body = bodies[request.slug] = to_body(request, rng)
        assert schema_valid(body, RegistrationRequest) == request
        expected = expected_view(request)

        response = await h.client.post(REGISTER, json=body, headers=A)
        assert response.status_code == 201, response.text
        data = created[request.slug] = response.json()["data"]
        assert (data["status"], data["approved"], data["changed"]) == ("active", True, True)
        assert_same(registration_fields(data), expected)

        shown = await h.client.get(f"{SERVICES}/{request.slug}", headers=A)
        assert shown.status_code == 200, shown.text
        view = shown.json()["data"]
        assert_same(registration_fields(view), expected)
        assert isinstance(view["ttl_seconds"], float)
        assert view == {key: value for key, value in data.items() if key not in ("approved", "changed")}
        registered = at(view["registered_at"])
        assert registered == h.clock.now()
        assert at(view["next_heartbeat_due_at"]) - registered == timedelta(seconds=expected["ttl_seconds"])
        assert at(view["expires_at"]) - registered == timedelta(seconds=expected["ttl_seconds"] * EXPIRY_WINDOWS)

        found = await h.client.get(f"{ENTRYPOINTS}/{request.slug}", headers=A)
        assert found.status_code == 200, found.text
        assert_same(found.json()["data"]["entrypoints"], expected["endpoints"])
        assert found.json()["data"]["capabilities"] == expected["capabilities"]

    # The list filters agree with their meaning on every backend, for every generated tag, capability and some texts.
    for tag in sorted({tag for request in requests for tag in request.tags} | {"unused"}):
        assert await listed(h, tag=tag) == sorted(r.slug for r in requests if tag in r.tags), tag
    for capability in sorted({c for request in requests for c in request.capabilities}):
        wanted = sorted(r.slug for r in requests if capability in r.capabilities)
        assert await listed(h, capability=capability) == wanted, capability
    for needle in ("ZÜRICH", "Café", "日本語", "🚀", "ÉTÉ", "e\u0301", requests[0].slug[:3], "%", "_"):
        assert await listed(h, q=needle) == sorted(r.slug for r in requests if matches_text(r, needle)), needle

    h.clock.advance(0.5)  # every generated TTL is at least 1 s: all services are still live
    for request in requests:
        again = await h.client.put(REGISTER, json=bodies[request.slug], headers=A)
        assert again.status_code == 200, again.text
        data = again.json()["data"]
        assert data["changed"] is False
        assert data["updated_at"] == created[request.slug]["updated_at"]
        assert_same(registration_fields(data), expected_view(request))
        stored = await h.plugin.store.get(request.slug)
        assert stored is not None
        assert stored.revision == 1  # an identical update writes nothing
        versions = await h.client.get(f"{SERVICES}/{request.slug}/versions", headers=A)
        assert versions.status_code == 200, versions.text
        entries = versions.json()["data"]
        assert [(v["version"], v["previous_version"]) for v in entries] == [(request.version, None)]
        assert at(entries[0]["recorded_at"]) == at(created[request.slug]["registered_at"])


async def test_generated_heartbeats_are_stored_as_sent(h: Harness, rng: Random) -> None:
    requests = distinct_registrations(6)
    history: dict[str, list[tuple[str, str | None, datetime]]] = {}
    for request in requests:
        response = await h.client.post(REGISTER, json=to_body(request, rng), headers=A)
        assert response.status_code == 201, response.text
        history[request.slug] = [(request.version, None, h.clock.now())]

    cases = [(request, variant) for variant in ("generated", "same", "omitted") for request in requests]
    assert len(cases) == 18
    for request, variant in cases:
        now = h.clock.advance(0.05)  # 18 beats: 0.9 s in all, less than any generated TTL
        before = await h.plugin.store.get(request.slug)
        assert before is not None
        beat = HeartbeatRequestFactory.build(slug=request.slug)
        if variant != "generated":  # the generated version is polyfactory's: absent, or new
            beat = msgspec.structs.replace(beat, version=before.version if variant == "same" else None)
        body = to_body(beat, rng)
        assert schema_valid(body, HeartbeatRequest) == beat
        version_changed = beat.version is not None and beat.version != before.version

        response = await h.client.post(HEARTBEAT, json=body, headers=A)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        healthy = beat.status.value == "healthy"
        assert (data["slug"], data["status"], data["failure_count"]) == (
            request.slug,
            "active" if healthy else "degraded",
            0,
        )
        assert data["version_changed"] is version_changed
        assert at(data["acknowledged_at"]) == now
        assert at(data["next_heartbeat_due_at"]) == now + timedelta(seconds=before.ttl_seconds)

        record = await h.plugin.store.get(request.slug)
        assert record is not None
        expected_health = HealthReport(
            status=beat.status.value,
            uptime_seconds=beat.uptime_seconds,
            instance_id=beat.instance_id,
            message=beat.message,
            checks={name: status.value for name, status in beat.checks.items()},
            metrics={name: float(value) for name, value in beat.metrics.items()},
            reported_at=None if beat.timestamp is None else utc(beat.timestamp),  # kept in UTC
        )
        assert_same(record.health, expected_health)
        assert (record.status.value, record.last_seen_at, record.failure_count) == (data["status"], now, 0)
        if version_changed:
            assert beat.version is not None
            history[request.slug].append((beat.version, before.version, now))
        assert record.version == history[request.slug][-1][0]
        assert record.updated_at == (now if version_changed else before.updated_at)
        entries = await h.plugin.store.versions(request.slug)
        assert [(e.version, e.previous_version, e.recorded_at) for e in entries] == history[request.slug]

    assert any(len(entries) > 1 for entries in history.values())  # the seed does exercise version changes
    for request in requests:
        versions = await h.client.get(f"{SERVICES}/{request.slug}/versions", headers=A)
        expected = [(version, previous) for version, previous, _ in history[request.slug]]
        assert [(v["version"], v["previous_version"]) for v in versions.json()["data"]] == expected


Mutation = Callable[[Body, Random], str]
"""Breaks one field of a valid body in place; returns the field path the 422 must name."""


def bad_slug(body: Body, rng: Random) -> str:
    slug = body["slug"]
    body["slug"] = rng.choice(
        (
            slug[0].upper() + slug[1:],
            slug + "-",
            "-" + slug,
            slug[0] + "--" + slug[1:],
            str(rng.randint(0, 9)) + slug,
            slug + "\n",
            (slug + "a" * 64)[:64],  # matches the pattern, one character too long
            slug + "_x",
            slug + " ",
            "",
        )
    )
    return "slug"


def unknown_field(body: Body, rng: Random) -> str:
    name = rng.choice(("colour", "ttl", "Slug", "tag", "owner_email"))
    body[name] = "x"
    return name


def unknown_nested_field(body: Body, rng: Random) -> str:
    if body.get("endpoints"):
        index = rng.randrange(len(body["endpoints"]))
        body["endpoints"][index]["timeout"] = 5
        return f"endpoints[{index}].timeout"
    body["owner"] = {"name": "Ann", "nick": "ann"}
    return "owner.nick"


def overlong_list(body: Body, rng: Random) -> str:
    name = rng.choice(("tags", "capabilities", "endpoints"))
    item: Any = {"name": "api", "url": "http://x"} if name == "endpoints" else "core"
    body[name] = [item] * 101
    return name


def overlong_metadata(body: Body, rng: Random) -> str:
    body["metadata"] = {f"k{i}": i for i in range(101)}
    return "metadata"


def overlong_string(body: Body, rng: Random) -> str:
    name, limit = rng.choice((("name", 200), ("version", 64), ("description", 2_000), ("base_url", 2_048)))
    body[name] = rng.choice("xé🚀") * (limit + 1)  # the limits count code points, not bytes
    return name


def overlong_label(body: Body, rng: Random) -> str:
    name = rng.choice(("tags", "capabilities"))
    body[name] = [*body.get(name, []), "t" * 101]
    return f"{name}[{len(body[name]) - 1}]"


def empty_required(body: Body, rng: Random) -> str:
    name = rng.choice(("name", "version"))
    body[name] = ""
    return name


def ttl_out_of_range(body: Body, rng: Random) -> str:
    body["ttl_seconds"] = rng.choice((0, -1, 0.5, 86_400.5, 10**9))  # gt=0 in the schema, 1..86 400 by policy
    return "ttl_seconds"


def missing_required(body: Body, rng: Random) -> str:
    name = rng.choice(("name", "version"))
    del body[name]
    return name


def wrong_type(body: Body, rng: Random) -> str:
    name, value = rng.choice(
        (("version", 3), ("tags", "core"), ("metadata", []), ("ttl_seconds", "thirty"), ("owner", 1))
    )
    body[name] = value
    return name


def null_required(body: Body, rng: Random) -> str:
    name = rng.choice(("name", "version", "slug"))
    body[name] = None
    return name


def endpoint_without_url(body: Body, rng: Random) -> str:
    body["endpoints"] = [*body.get("endpoints", []), {"name": "api"}]
    return f"endpoints[{len(body['endpoints']) - 1}].url"


REGISTRATION_MUTATIONS: tuple[Mutation, ...] = (
    bad_slug,
    bad_slug,
    unknown_field,
    unknown_nested_field,
    overlong_list,
    overlong_metadata,
    overlong_string,
    overlong_label,
    empty_required,
    ttl_out_of_range,
    missing_required,
    wrong_type,
    null_required,
    endpoint_without_url,
)


async def test_generated_registrations_made_invalid_in_one_field_are_422_and_store_nothing(
    h: Harness, rng: Random
) -> None:
    requests = distinct_registrations(len(REGISTRATION_MUTATIONS))
    for request, mutate in zip(requests, REGISTRATION_MUTATIONS, strict=True):
        body = to_body(request, rng)
        field = mutate(body, rng)
        for method in ("POST", "PUT"):
            details = problem(await h.client.request(method, REGISTER, json=body, headers=A), 422, "invalid_input")
            assert details["errors"], details
            assert details["errors"][0]["field"] == field, (mutate.__name__, body.get("slug"), details)
        assert await h.plugin.store.get(request.slug) is None
        assert await h.plugin.store.versions(request.slug) == []
    assert (await h.plugin.store.find(ServiceQuery())).items == []


HEARTBEAT_MUTATIONS: tuple[tuple[str, Callable[[Random], Any], str], ...] = (
    ("status", lambda rng: rng.choice(("fine", "HEALTHY", "", "degraded ")), "status"),
    ("uptime_seconds", lambda rng: -rng.uniform(0.001, 1e6), "uptime_seconds"),
    ("version", lambda rng: rng.choice(("", "1" * 65)), "version"),
    ("instance_id", lambda rng: "i" * 201, "instance_id"),
    ("message", lambda rng: rng.choice("mé🚀") * 2_001, "message"),
    ("checks", lambda rng: {rng.choice(("db", "cache")): "green"}, "checks[...]"),
    ("checks", lambda rng: {"c" * 101: "healthy"}, "checks"),
    ("checks", lambda rng: {f"c{i}": "healthy" for i in range(101)}, "checks"),
    ("metrics", lambda rng: {"rps": rng.choice(("fast", None, [1]))}, "metrics[...]"),
    ("metrics", lambda rng: {f"m{i}": i for i in range(101)}, "metrics"),
    ("timestamp", lambda rng: rng.choice(("yesterday", "2026-13-01T00:00:00Z", "")), "timestamp"),
    ("colour", lambda rng: "red", "colour"),
)
"""(field, a bad value, the field path the 422 names). Only values that Litestar's lax decoding cannot coerce:
it turns ``"5"`` into ``5.0`` and a number into a Unix timestamp, so those are valid input."""


async def test_generated_heartbeats_made_invalid_in_one_field_are_422_and_change_nothing(
    h: Harness, rng: Random
) -> None:
    request = RegistrationRequestFactory.build()
    assert (await h.client.post(REGISTER, json=to_body(request, rng), headers=A)).status_code == 201
    before = await h.plugin.store.get(request.slug)
    h.clock.advance(0.5)
    for name, make, field in HEARTBEAT_MUTATIONS:
        body = to_body(HeartbeatRequestFactory.build(slug=request.slug), rng)
        body[name] = make(rng)
        details = problem(await h.client.post(HEARTBEAT, json=body, headers=A), 422, "invalid_input")
        assert details["errors"], details
        assert details["errors"][0]["field"] == field, (body, details)
    assert await h.plugin.store.get(request.slug) == before


# --- Values at the edges of what the stores keep ----------------------------------------------------------------
# Found by the generators above: valid-looking input that some backend once mishandled (a 500 on PostgreSQL or
# Redis, a PUT that never stayed idempotent, an offset kept by some stores only). Each now behaves the same on every
# backend; the generators make the storable ones freely.


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "a\x00b"}, "name"),  # PostgreSQL text and JSON cannot hold U+0000
        ({"metadata": {"team": {"lead": "x\x00"}}}, "metadata.team.lead"),
        ({"metadata": {"big": 2**64}}, "metadata.big"),  # msgpack (Redis) has no integers beyond 64 bits
        ({"metadata": {"small": -(2**63) - 1}}, "metadata.small"),
        ({"endpoints": [{"name": "api", "url": "http://x/\x00"}]}, "endpoints[0].url"),
    ],
)
async def test_values_no_backend_can_store_are_422_and_change_nothing(
    h: Harness, changes: dict[str, Any], field: str
) -> None:
    response = await h.client.post(REGISTER, json=registration("edge", **changes), headers=A)
    assert problem(response, 422, "invalid_input")["errors"][0]["field"] == field
    assert await h.plugin.store.get("edge") is None
    await h.register("edge")
    before = await h.plugin.store.get("edge")
    update = await h.client.put(REGISTER, json=registration("edge", **changes), headers=A)
    assert problem(update, 422, "invalid_input")["errors"][0]["field"] == field
    assert await h.plugin.store.get("edge") == before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"metrics": {"rps": "nan"}}, "metrics.rps"),  # lenient decoding turns the string into float("nan")
        ({"metrics": {"rps": "-inf"}}, "metrics.rps"),
        ({"version": "2.0\x00"}, "version"),  # once half-applied on PostgreSQL: contact stored, then a 500
        ({"message": "\x00"}, "message"),
        ({"checks": {"d\x00b": "healthy"}}, "checks"),
        # Values of the wrong JSON type, which Litestar's lax conversion took (a number as a Unix time, a numeric
        # string as a number): the strict check names a map's value by its position only.
        ({"timestamp": 0}, "timestamp"),
        ({"uptime_seconds": "5"}, "uptime_seconds"),
        ({"metrics": {"rps": "12"}}, "metrics[...]"),
    ],
)
async def test_heartbeats_no_backend_can_store_are_422_and_change_nothing(
    h: Harness, changes: dict[str, Any], field: str
) -> None:
    await h.register("edge")
    before = await h.plugin.store.get("edge")
    h.clock.advance(5)
    response = await h.client.post(HEARTBEAT, json={"slug": "edge", **changes}, headers=A)
    assert problem(response, 422, "invalid_input")["errors"][0]["field"] == field
    assert await h.plugin.store.get("edge") == before


async def test_numbers_json_would_normalize_round_trip_and_keep_put_idempotent(h: Harness) -> None:
    metadata = {"huge": 1e300, "big": 1e16, "tiny": 5e-324, "z": 1, "a": -0.0}
    created = await h.client.post(REGISTER, json=registration("floats", metadata=metadata), headers=A)
    assert created.status_code == 201
    again = await h.client.put(REGISTER, json=registration("floats", metadata=metadata), headers=A)
    assert again.json()["data"]["changed"] is False
    stored = await h.plugin.store.get("floats")
    assert stored is not None
    assert stored.revision == 1
    assert_same(stored.metadata, metadata)
    shown = (await h.client.get(f"{SERVICES}/floats", headers=A)).json()["data"]["metadata"]
    assert_same(shown, metadata)


async def test_a_report_timestamp_is_kept_in_utc(h: Harness) -> None:
    await h.register("offset")
    beat = {"slug": "offset", "timestamp": "2026-01-01T02:00:00+02:00"}
    assert (await h.client.post(HEARTBEAT, json=beat, headers=A)).status_code == 200
    stored = await h.plugin.store.get("offset")
    assert stored is not None
    assert stored.health is not None
    assert stored.health.reported_at is not None
    assert stored.health.reported_at.isoformat() == "2026-01-01T00:00:00+00:00"  # the same instant, on every backend


async def test_a_registration_value_of_the_wrong_json_type_is_422_and_stores_nothing(
    h: Harness,
) -> None:
    refused = await h.client.post(REGISTER, json=registration("typed", ttl_seconds="60"), headers=A)
    assert problem(refused, 422, "invalid_input")["errors"][0]["field"] == "ttl_seconds"
    assert await h.plugin.store.get("typed") is None
    beat = await h.client.post(HEARTBEAT, json={"slug": "nobody", "uptime_seconds": 5}, headers=A)
    assert beat.status_code == 404  # the right types pass the check and reach the registry
