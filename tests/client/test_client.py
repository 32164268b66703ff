"""``RegistryClient``, its errors, its config and the announcing plugin against a real registry in its own process."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from litestar_registry.client import (
    ClientConfigurationError,
    Entrypoint,
    Health,
    HealthStatus,
    Heartbeat,
    HeartbeatAck,
    KeepAliveEvent,
    KeepAliveState,
    ProblemError,
    Registered,
    Registration,
    RegistryClient,
    RegistryClientConfig,
    RegistryClientPlugin,
    RegistryHTTPError,
    RegistryUnavailable,
    TtlRegistration,
    TtlServiceInfo,
    UnexpectedResponse,
)
from litestar_registry.client.errors import error_from_response, parse_retry_after
from tests.client.conftest import PENDING_KEY, ROOT, SERVICE_KEY, TTL_KEY, Process, free_port

pytestmark = pytest.mark.e2e


def client_of(registry: Process, **options: Any) -> RegistryClient:
    return RegistryClient(registry.base_url, **{"token": SERVICE_KEY, "service_key": TTL_KEY, **options})


def registration(slug: str, **fields: Any) -> Registration:
    return Registration(slug=slug, name=slug.title(), version="1.0", ttl_seconds=30, **fields)


async def test_register_update_heartbeat_read_and_deregister(shared_registry: Process) -> None:
    slug = "client-basic"
    body = registration(slug, endpoints=[Entrypoint(name="api", url="http://basic/api", method="GET")], tags=["x"])
    async with client_of(shared_registry) as client:
        registered = await client.register(body)
        assert isinstance(registered, Registered)
        assert (registered.status, registered.approved, registered.changed, registered.ttl_seconds) == (
            "active",
            True,
            True,
            30.0,
        )
        assert registered.endpoints == [Entrypoint(name="api", url="http://basic/api", method="GET")]

        with pytest.raises(ProblemError) as taken:
            await client.register(body)
        assert (taken.value.status, taken.value.code) == (409, "service_exists")
        assert taken.value.trace_id
        assert taken.value.body["service_status"] == "active"

        assert (await client.update(body)).changed is False  # idempotent
        newer = await client.update(msgspec.structs.replace(body, version="1.1"))
        assert (newer.changed, newer.version) == (True, "1.1")

        beat = Heartbeat(
            slug=slug,
            status=HealthStatus.DEGRADED,
            version="1.1",
            uptime_seconds=5,
            checks={"db": HealthStatus.DEGRADED},
            metrics={"queue": 3},
        )
        ack = await client.heartbeat(beat)
        assert isinstance(ack, HeartbeatAck)
        assert (ack.status, ack.failure_count, ack.version_changed) == ("degraded", 0, False)
        shown = await client.get(slug)
        assert shown.health is not None
        assert (shown.status, shown.health.checks, shown.health.metrics) == (
            "degraded",
            {"db": "degraded"},
            {"queue": 3},
        )
        assert (await client.heartbeat(slug)).status == "active"  # a bare slug reports healthy

        await client.deregister(slug, reason="the test is over")
        assert (await client.get(slug)).status == "deregistered"  # this registry keeps deregistered records
        with pytest.raises(ProblemError) as gone:
            await client.heartbeat(slug)
        assert (gone.value.status, gone.value.code, gone.value.gone, gone.value.retryable) == (
            404,
            "service_not_found",
            True,
            False,
        )


async def test_validation_and_auth_failures_keep_what_the_problem_says(shared_registry: Process) -> None:
    async with client_of(shared_registry) as client:
        with pytest.raises(ProblemError) as invalid:
            await client.register(Registration(slug="Not A Slug", name="x", version="1"))
        problem = invalid.value
        assert (problem.status, problem.code, problem.title) == (422, "invalid_input", "Validation failed")
        assert [error.field for error in problem.errors] == ["slug"]
        assert problem.errors[0].message
        assert problem.instance == "/api/v1/registry/register"

    async with client_of(shared_registry, token="not-a-key-of-this-registry") as stranger:
        with pytest.raises(ProblemError) as refused:
            await stranger.heartbeat("client-basic")
        assert (refused.value.status, refused.value.code) == (401, "authentication_required")


async def test_a_newcomer_waits_for_approval(shared_registry: Process) -> None:
    async with client_of(shared_registry, token=PENDING_KEY) as newcomer:
        registered = await newcomer.register(registration("client-newcomer"))
        assert (registered.status, registered.approved) == ("pending", False)
        with pytest.raises(ProblemError) as waiting:
            await newcomer.heartbeat("client-newcomer")
        assert (waiting.value.status, waiting.value.code) == (409, "service_conflict")


async def test_lists_and_discovery_iterate_every_page_with_filters(shared_registry: Process) -> None:
    async with client_of(shared_registry) as client:
        for index in range(7):
            endpoint = Entrypoint(name="api", url=f"http://page-{index}/", protocol="grpc" if index == 3 else "http")
            await client.register(
                registration(
                    f"client-page-{index}",
                    tags=["client-paging"],
                    capabilities=["paging"] if index % 2 else [],
                    endpoints=[endpoint],
                )
            )
        pages = 0

        async def count(request: httpx.Request) -> None:
            nonlocal pages
            pages += 1

        client.http.event_hooks["request"].append(count)
        listed = await client.list_services(tag="client-paging", page_size=2)
        assert [service.slug for service in listed] == [f"client-page-{index}" for index in range(7)]
        assert pages == 4

        assert len(await client.list_services(tag="client-paging", capability="paging", page_size=1)) == 3
        assert len(await client.list_services(tag="client-paging", status=["active", "degraded"])) == 7
        assert await client.list_services(tag="client-paging", status="expired") == []
        assert [s.slug for s in await client.list_services(q="client-page-3")] == ["client-page-3"]

        found = await client.entrypoints(capability="paging", page_size=1)
        assert [item.slug for item in found] == ["client-page-1", "client-page-3", "client-page-5"]
        grpc = await client.entrypoints(capability="paging", protocol="grpc")
        assert [(item.slug, [e.protocol for e in item.entrypoints]) for item in grpc] == [("client-page-3", ["grpc"])]
        one = await client.service_entrypoints("client-page-1")
        assert (one.slug, one.capabilities, one.entrypoints[0].url) == ("client-page-1", ["paging"], "http://page-1/")


async def test_the_ttl_dialect_register_ping_read_and_deregister(shared_registry: Process) -> None:
    info = TtlServiceInfo(id="client-ttl", display_name="Model", model_metadata={"author": "A"})
    body = TtlRegistration(url="http://model:8080", info=info, ttl_seconds=30)
    async with client_of(shared_registry) as client:
        answer = await client.ttl.register(body)
        assert (answer.id, answer.status, answer.ttl_seconds) == ("client-ttl", "registered", 30.0)
        assert answer.ping_url.endswith("/v2/services/client-ttl/$ping")
        pong = await client.ttl.ping("client-ttl")
        assert pong.status == "alive"
        assert pong.expires_at > pong.last_ping_at
        entry = await client.ttl.get("client-ttl")
        assert (entry.url, entry.info["model_metadata"]) == ("http://model:8080", {"author": "A"})
        assert "client-ttl" in [service.id for service in await client.ttl.list_services()]
        assert (await client.get("client-ttl")).status == "active"  # one core: the other dialect sees it too

        await client.ttl.deregister("client-ttl")
        with pytest.raises(RegistryHTTPError) as gone:
            await client.ttl.ping("client-ttl")
        assert not isinstance(gone.value, ProblemError)  # the TTL dialect answers {"detail": ...}
        assert (gone.value.status, gone.value.gone, gone.value.detail) == (404, True, "Service client-ttl not found")

    async with client_of(shared_registry, service_key="not-the-key-0123456789") as wrong:
        with pytest.raises(RegistryHTTPError) as refused:
            await wrong.ttl.register(body)
        assert (refused.value.status, refused.value.detail) == (401, "Invalid service key")
    async with client_of(shared_registry, service_key=None) as keyless:
        with pytest.raises(RegistryHTTPError) as missing:
            await keyless.ttl.register(body)
        assert missing.value.status == 422
        assert [error.field for error in missing.value.errors] == ["header.x-service-key"]


async def test_unreachable_foreign_and_malformed_answers_raise_typed_errors(shared_registry: Process) -> None:
    async with RegistryClient(f"http://127.0.0.1:{free_port()}") as nowhere:
        with pytest.raises(RegistryUnavailable) as down:
            await nowhere.get("anything")
        assert down.value.retryable

    async with client_of(shared_registry, registry_path="/not-mounted-here") as lost:
        with pytest.raises(RegistryHTTPError) as foreign:  # the host app's own 404, not a problem
            await lost.get("anything")
        assert (type(foreign.value), foreign.value.status, foreign.value.code) == (RegistryHTTPError, 404, None)

        page = await lost.request("GET", "/healthz")  # 200, but not the shape a heartbeat answers with
        with pytest.raises(UnexpectedResponse) as odd:
            RegistryClient.decode(page, HeartbeatAck)
        assert (odd.value.status, odd.value.retryable) == (200, True)


def test_error_answers_keep_status_retry_after_and_field_errors() -> None:
    problem = {
        "type": "urn:litestar-registry:problem:invalid_input",
        "title": "Validation failed",
        "status": 422,
        "detail": "the request is not valid",
        "instance": "/api/v1/registry/register",
        "code": "invalid_input",
        "trace_id": "abc",
        "errors": [{"field": "slug", "message": "bad"}],
    }
    answer = httpx.Response(422, json=problem, headers={"content-type": "application/problem+json"})
    error = error_from_response(answer)
    assert isinstance(error, ProblemError)
    assert (error.status, error.code, error.detail, error.trace_id) == (422, "invalid_input", problem["detail"], "abc")
    assert [(e.field, e.message) for e in error.errors] == [("slug", "bad")]

    busy = error_from_response(httpx.Response(503, text="try later", headers={"retry-after": "7"}))
    assert (busy.status, busy.detail, busy.retry_after, busy.retryable, busy.gone) == (
        503,
        "try later",
        7.0,
        True,
        False,
    )
    assert error_from_response(httpx.Response(429)).retryable
    assert error_from_response(httpx.Response(410)).gone


def test_retry_after_as_seconds_or_an_http_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=10), usegmt=True), now=now.timestamp()) == 10
    assert parse_retry_after(format_datetime(now - timedelta(seconds=10), usegmt=True), now=now.timestamp()) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_config_from_the_environment_with_code_winning() -> None:
    environ = {
        "REGISTRY_CLIENT_URL": "http://registry:8000",
        "REGISTRY_CLIENT_SLUG": "billing",
        "REGISTRY_CLIENT_TAGS": "a, b,",
        "REGISTRY_CLIENT_TTL_SECONDS": "12",
        "REGISTRY_CLIENT_DEREGISTER_ON_SHUTDOWN": "off",
        "REGISTRY_CLIENT_NAME": "",
        "REGISTRY_CLIENT_VERSION": "1.0",
    }
    config = RegistryClientConfig.from_env(environ, version="2.0")
    assert (config.url, config.slug, config.tags, config.ttl_seconds) == (
        "http://registry:8000",
        "billing",
        ("a", "b"),
        12,
    )
    assert (config.deregister_on_shutdown, config.name, config.version) == (False, None, "2.0")
    assert config.probe_url is None
    assert RegistryClientConfig.from_env({**environ, "REGISTRY_CLIENT_BASE_URL": "http://me"}).probe_url == "http://me"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"REGISTRY_CLIENT_SLUG": "svc"}, "REGISTRY_CLIENT_URL"),
        ({"REGISTRY_CLIENT_URL": "http://r"}, "REGISTRY_CLIENT_SLUG"),
        ({"REGISTRY_CLIENT_URL": "http://r", "REGISTRY_CLIENT_SLUG": "s", "REGISTRY_CLIENT_DIALECT": "x"}, "dialect"),
        (
            {"REGISTRY_CLIENT_URL": "http://r", "REGISTRY_CLIENT_SLUG": "s", "REGISTRY_CLIENT_DIALECT": "ttl"},
            "BASE_URL",
        ),
        (
            {"REGISTRY_CLIENT_URL": "http://r", "REGISTRY_CLIENT_SLUG": "s", "REGISTRY_CLIENT_TTL_SECONDS": "soon"},
            "soon",
        ),
        (
            {"REGISTRY_CLIENT_URL": "http://r", "REGISTRY_CLIENT_SLUG": "s", "REGISTRY_CLIENT_ENABLED": "maybe"},
            "ENABLED",
        ),
    ],
)
def test_a_bad_or_missing_setting_names_its_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ClientConfigurationError, match=message):
        RegistryClientConfig.from_env(environ)


async def test_a_disabled_plugin_needs_nothing_and_does_nothing() -> None:
    plugin = RegistryClientPlugin(RegistryClientConfig.from_env({"REGISTRY_CLIENT_ENABLED": "false"}))
    async with AsyncTestClient(Litestar(plugins=[plugin])):
        assert plugin.keepalive is None


async def wait_for(check: Any, within: float) -> Any:
    deadline = time.monotonic() + within
    while not (found := await check()):
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within} s")
        await asyncio.sleep(0.05)
    return found


async def test_the_plugin_announces_its_host_with_its_health_and_leaves_on_shutdown(shared_registry: Process) -> None:
    slug = "client-plugin"
    events: list[KeepAliveEvent] = []

    async def health() -> Health:
        return Health(status=HealthStatus.DEGRADED, message="warming up", checks={"cache": HealthStatus.DEGRADED})

    config = RegistryClientConfig(
        url=shared_registry.base_url,
        token=SERVICE_KEY,
        slug=slug,
        version="3.1",
        ttl_seconds=1.5,
        capabilities=("announcing",),
        ready_url=f"{shared_registry.base_url}/healthz",  # answers: the plugin registers at once
        health=health,
        on_state=events.append,
    )
    plugin = RegistryClientPlugin(config)
    async with client_of(shared_registry) as reader:

        async def reported() -> Any:
            try:
                shown = await reader.get(slug)
            except ProblemError:
                return None
            return shown if shown.health is not None and shown.status != "deregistered" else None

        async with AsyncTestClient(Litestar(plugins=[plugin])):
            shown = await wait_for(reported, within=10)
            assert (shown.status, shown.version, shown.capabilities) == ("degraded", "3.1", ["announcing"])
            assert shown.health.message == "warming up"
            assert shown.health.uptime_seconds is not None
            assert plugin.keepalive is not None
            assert plugin.keepalive.state is KeepAliveState.HEALTHY
        assert (await reader.get(slug)).status == "deregistered"
    assert events[0].state is KeepAliveState.HEALTHY
    assert events[-1].state is KeepAliveState.STOPPED


class Records(logging.Handler):
    """Collects records of one logger (Litestar's own logging config would take them from caplog's root handler)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_a_host_that_never_answers_its_probe_is_registered_anyway(shared_registry: Process) -> None:
    config = RegistryClientConfig(
        url=shared_registry.base_url,
        token=SERVICE_KEY,
        slug="client-unprobed",
        base_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        ready_timeout_seconds=0.3,
        deregister_on_shutdown=False,
    )
    plugin = RegistryClientPlugin(config)
    async with client_of(shared_registry) as reader:

        async def registered() -> bool:
            try:
                return (await reader.get("client-unprobed")).status == "active"
            except ProblemError:
                return False

        records, logger = Records(), logging.getLogger("litestar_registry.client")
        logger.addHandler(records)
        try:
            async with AsyncTestClient(Litestar(plugins=[plugin])):
                await wait_for(registered, within=10)
        finally:
            logger.removeHandler(records)
        assert (await reader.get("client-unprobed")).status == "active"  # deregister_on_shutdown is off
    assert any("did not answer within 0.3 s; registering anyway" in message for message in records.messages)


def test_the_client_needs_neither_litestar_nor_the_server() -> None:
    code = """
import asyncio, importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        blocked = ("litestar", "litestar_registry.api", "litestar_registry.core", "litestar_registry.store")
        if name in blocked or name.startswith(tuple(b + "." for b in blocked)) or name.startswith("sqlalchemy"):
            raise ImportError("blocked: " + name)

sys.meta_path.insert(0, Block())
from litestar_registry.client import KeepAlive, RegistryClient, RegistryClientConfig, RegistryDialectTarget
from litestar_registry.client import ProblemError, Registration, TtlDialectTarget

async def main():
    async with RegistryClient("http://127.0.0.1:9", token="t") as client:
        KeepAlive(RegistryDialectTarget(client, Registration(slug="a", name="A", version="1")))
    RegistryClientConfig(url="http://r", slug="s")

asyncio.run(main())
print("ok", "litestar" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "ok False"), done.stderr
