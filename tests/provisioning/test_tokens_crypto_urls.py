"""Callback tokens (256 bits, hash only, single use, expiring), sealed credentials, and the outbound URL policy."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from litestar_registry.provisioning import OutboundURLPolicy, OutboundURLRefused
from litestar_registry.provisioning.crypto import CredentialCipher
from litestar_registry.provisioning.errors import CallbackTokenExpired, CallbackTokenUnknown, CallbackTokenUsed
from litestar_registry.provisioning.http import OutboundHTTP
from litestar_registry.provisioning.sealed import REDACTED, is_sealed, redact
from litestar_registry.provisioning.tokens import (
    CallbackTokenRecord,
    TokenState,
    classify,
    hash_token,
    issue_token,
    raise_for,
)
from tests.provisioning.receiver import Receiver

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def record(token_hash: str, **fields: object) -> CallbackTokenRecord:
    values: dict[str, object] = {
        "token_hash": token_hash,
        "tenant": "t",
        "workflow_id": "w",
        "step": "s",
        "run": 0,
        "dbos_workflow_id": "w:0",
        "issued_at": T0,
        "expires_at": T0 + timedelta(seconds=60),
        **fields,
    }
    return CallbackTokenRecord(**values)  # type: ignore[arg-type]


def test_tokens_carry_256_random_bits_and_only_their_hash_is_kept() -> None:
    tokens = {issue_token() for _ in range(200)}
    assert len(tokens) == 200
    for token, token_hash in tokens:
        assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) == 32
        assert token_hash == hash_token(token)
        assert len(token_hash) == 64
        assert token not in token_hash
    assert hash_token("") != hash_token("x")
    assert len(hash_token("\x00" * 600)) > 64


def test_a_token_is_unknown_used_expired_or_valid() -> None:
    _, token_hash = issue_token()
    assert classify(None, T0) is TokenState.UNKNOWN
    assert classify(record(token_hash), T0) is TokenState.VALID
    assert classify(record(token_hash), T0 + timedelta(seconds=59)) is TokenState.VALID
    assert classify(record(token_hash), T0 + timedelta(seconds=60)) is TokenState.EXPIRED
    assert classify(record(token_hash, used_at=T0), T0 + timedelta(seconds=61)) is TokenState.USED  # used wins
    raise_for(TokenState.VALID)
    for state, error in [
        (TokenState.UNKNOWN, CallbackTokenUnknown),
        (TokenState.USED, CallbackTokenUsed),
        (TokenState.EXPIRED, CallbackTokenExpired),
    ]:
        with pytest.raises(error):
            raise_for(state)


def test_credentials_are_sealed_opened_rotated_and_redacted() -> None:
    old, new = CredentialCipher.generate_key(), CredentialCipher.generate_key()
    sealed = CredentialCipher([old]).seal({"password": "hunter2"})
    assert is_sealed(sealed)
    assert "hunter2" not in str(sealed)
    rotating = CredentialCipher([new, old])
    assert rotating.open(sealed) == {"password": "hunter2"}
    rotated = rotating.rotate(sealed)
    assert CredentialCipher([new]).open(rotated) == {"password": "hunter2"}
    with pytest.raises(ValueError, match="cannot be opened"):
        CredentialCipher([new]).open(sealed)
    nested = {"endpoint": "https://db", "credentials": sealed, "more": [sealed, 1]}
    assert redact(nested) == {"endpoint": "https://db", "credentials": REDACTED, "more": [REDACTED, 1]}
    assert CredentialCipher([old]).open_all(nested)["more"][0] == {"password": "hunter2"}


def test_a_bad_key_is_refused_without_being_echoed() -> None:
    with pytest.raises(ValueError, match="key #2 is not a Fernet key") as caught:
        CredentialCipher([CredentialCipher.generate_key(), "not-a-key-but-a-secret"])
    assert "not-a-key-but-a-secret" not in str(caught.value)
    with pytest.raises(ValueError, match="at least one"):
        CredentialCipher([])


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "0.0.0.0",
        "::",
        "::ffff:127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "fd00::1",
        "169.254.169.254",
        "fe80::1",
        "224.0.0.1",
        "240.0.0.1",
    ],
)
def test_the_closed_policy_refuses_every_non_public_address(address: str) -> None:
    with pytest.raises(OutboundURLRefused):
        OutboundURLPolicy().check_address(address)


def test_each_range_opens_only_by_its_own_flag() -> None:
    OutboundURLPolicy().check_address("93.184.216.34")
    OutboundURLPolicy(allow_loopback=True).check_address("127.0.0.1")
    OutboundURLPolicy(allow_loopback=True).check_address("::ffff:127.0.0.1")
    with pytest.raises(OutboundURLRefused):
        OutboundURLPolicy(allow_loopback=True).check_address("10.0.0.1")
    OutboundURLPolicy(allow_private=True).check_address("10.0.0.1")
    with pytest.raises(OutboundURLRefused, match="link-local"):
        OutboundURLPolicy(allow_private=True).check_address("169.254.169.254")
    OutboundURLPolicy(allow_link_local=True).check_address("169.254.169.254")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "must use"),
        ("file:///etc/passwd", "must use"),
        ("https://user:pw@example.com/", "user info"),
        ("https:///nohost", "no host"),
        ("http://exa mple.com/", "whitespace"),
        ("http://example.com:99999/", "cannot be parsed"),
        ("", "empty"),
    ],
)
def test_malformed_or_smuggling_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(OutboundURLRefused, match=message):
        OutboundURLPolicy().check_syntax(url)


async def test_every_resolved_address_must_pass_and_allowed_hosts_skip_the_check() -> None:
    async def rebinding(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.7"]  # one public answer does not excuse a private one

    with pytest.raises(OutboundURLRefused, match=r"10\.0\.0\.7"):
        await OutboundURLPolicy().resolve("https://service.example/hook", rebinding)
    target = await OutboundURLPolicy(allowed_hosts=frozenset({"Service.Example"})).resolve(
        "https://service.example/hook", rebinding
    )
    assert target.addresses == ("93.184.216.34", "10.0.0.7")
    with pytest.raises(OutboundURLRefused, match="loopback"):
        await OutboundURLPolicy().resolve("http://localhost:8000/")  # the system resolver, really


async def test_requests_go_to_the_checked_address_with_the_original_host_and_no_redirects() -> None:
    async with Receiver.answering([302]) as server:
        checked: list[str] = []

        async def resolver(host: str, port: int) -> list[str]:
            checked.append(host)
            return ["127.0.0.1"]

        http = OutboundHTTP(OutboundURLPolicy(allow_loopback=True), resolver=resolver)
        url = f"http://provisioner.test:{server.port}/provision"
        response = await http.request("POST", url, json={"a": 1}, headers={"Idempotency-Key": "w:s"})
        assert response.status_code == 302  # answered as is: the redirect is not followed
        assert checked == ["provisioner.test"]
        [received] = server.requests
        assert received.headers["host"] == f"provisioner.test:{server.port}"
        assert received.headers["idempotency-key"] == "w:s"
        assert (received.method, received.path, received.body) == ("POST", "/provision", {"a": 1})
        with pytest.raises(OutboundURLRefused):
            await OutboundHTTP(OutboundURLPolicy()).request("POST", server.url)  # loopback closed by default
        assert len(server.requests) == 1


async def test_https_keeps_the_name_for_sni() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    http = OutboundHTTP(OutboundURLPolicy(), resolver=resolver, transport=httpx.MockTransport(handler))
    await http.request("GET", "https://api.example.com/x")
    [request] = seen
    assert request.url.host == "93.184.216.34"
    assert request.headers["host"] == "api.example.com"
    assert request.extensions["sni_hostname"] == "api.example.com"
