"""Schema fuzzing: every operation of the example app, on SQLite and PostgreSQL, with service and admin keys.

Schemathesis generates requests from the OpenAPI document the app serves (valid and invalid ones, boundaries
included) and checks every answer against it: no server error, a documented status, content type, headers and body,
invalid input refused, valid input accepted, an ``Allow`` header that lists every method. Excluded, and why:

- ``ignored_auth`` on the TTL dialect's writes: seed 004 answers a missing ``X-Service-Key`` with 422, where the
  check expects 401 or 403 (a wrong key does answer 401, as the check wants).
- ``positive_data_acceptance`` for a request with a ``cursor``: a cursor is a token the registry hands out, and one
  it did not is refused (422). The schema can give its alphabet, not the tokens.
- ``negative_data_rejection`` for a request whose headers are the invalid part: the generator counts a header the
  document does not name (``Last-Event-ID`` is the only one it names, on the stream) as invalid, where HTTP lets any
  request carry headers a server does not know. A bad ``Last-Event-ID`` itself is a 422 (``tests/feed``).

With keys in the environment the example app runs without provisioning, whose routes then leave the document.
Fuzzing them with provisioning on is left to ``tests/provisioning``: DBOS's threads use ``random`` while Hypothesis
draws, which Hypothesis refuses.

The document is read once, from an app on the in-memory store; requests go to the app of the backend under test.
"""

from __future__ import annotations

import asyncio
import os
import zlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from litestar import Litestar
from schemathesis.core.parameters import ParameterLocation
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import ignored_auth, negative_data_rejection, positive_data_acceptance

from tests.backends import backend_url, open_store

pytestmark = pytest.mark.xdist_group("registry-fuzz")  # its module-scoped app per backend, once

SERVICE_KEY = "fuzz-service-key-0123456789"
ADMIN_KEY = "fuzz-admin-key-0123456789"
TTL_KEY = "fuzz-ttl-key-0123456789"
ENVIRONMENT = {
    "REGISTRY_SERVICE_KEYS": f"fuzz={SERVICE_KEY}",
    "REGISTRY_ADMIN_KEYS": f"ops={ADMIN_KEY}",
    "REGISTRY_TTL_REGISTRATION_KEY": TTL_KEY,
    "REGISTRY_AUTO_APPROVE_ACCOUNTS": "fuzz",
    "REGISTRY_SWEEPER_ENABLED": "false",
    # A long poll waits at most this long, and an event stream ends after it: every call gets its whole answer.
    "REGISTRY_FEED_MAX_WAIT_SECONDS": "0.2",
    "REGISTRY_FEED_STREAM_MAX_SECONDS": "0.2",
}
EXAMPLES = 8
"""Generated requests per operation and case, besides Schemathesis's own boundary and example cases."""


def example_app(store_url: str) -> Litestar:
    """The example app as ``create_app`` builds it from the environment, with the fuzzing keys and ``store_url``."""
    from example_app.app import create_app

    with mock.patch.dict(os.environ, {**ENVIRONMENT, "REGISTRY_STORE_URL": store_url}):
        return create_app()


class BackendUnderTest:
    """The ASGI app Schemathesis calls: it forwards to the example app of the backend under test, lifespan included."""

    def __init__(self) -> None:
        self.app: Litestar | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None, "no backend under test"
        await self.app(scope, receive, send)


UNDER_TEST = BackendUnderTest()
schema = schemathesis.openapi.from_dict(example_app("memory://").openapi_schema.to_schema())
schema.app = UNDER_TEST
schema.config.seed = 8  # the same requests on every run: a failure here is a finding, never a fluke of the draw


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Point the app under test at a fresh store of each backend; Schemathesis runs its lifespan."""
    name, where = str(request.param), tmp_path_factory.mktemp("fuzz")
    url = backend_url(name, where)

    async def empty() -> None:
        async with open_store(name, where):
            pass

    if name == "postgres":
        asyncio.run(empty())  # a database shared with other tests: start and end empty
    UNDER_TEST.app = example_app(url)
    try:
        yield name
    finally:
        shutdown_lifespans()
        UNDER_TEST.app = None
        if name == "postgres":
            asyncio.run(empty())


def bearer_for(case: schemathesis.Case) -> str:
    """The service or the admin key, chosen by the request's content: both keys meet every operation, in one run.

    The choice is stable for a given request, so that Hypothesis replays a failure with the same key.
    """
    content = repr((case.method, case.path_parameters, case.query, case.body)).encode("utf-8", "surrogatepass")
    return ADMIN_KEY if zlib.crc32(content) % 2 else SERVICE_KEY


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_the_document_says_what_the_server_does(case: schemathesis.Case, backend: str) -> None:
    ttl_dialect = case.path.startswith("/v2/services")
    headers = {"X-Service-Key": TTL_KEY} if ttl_dialect else {"Authorization": f"Bearer {bearer_for(case)}"}
    excluded = []
    if ttl_dialect and case.method.upper() in ("POST", "PUT", "DELETE"):
        excluded.append(ignored_auth)
    if isinstance(case.query, dict) and "cursor" in case.query:
        excluded.append(positive_data_acceptance)
    components = case.meta.components if case.meta is not None else {}
    if (header := components.get(ParameterLocation.HEADER)) is not None and header.mode.is_negative:
        excluded.append(negative_data_rejection)
    case.call_and_validate(headers=headers, excluded_checks=excluded)
