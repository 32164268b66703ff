"""Principals carry a tenant: tenant keys (code and environment, checked like every key), dev mode, and a host's own
tokens mapped to principals by an authenticator of its own."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path

import pytest

from litestar_registry import RegistryConfig
from litestar_registry.config import RegistryConfigurationError
from litestar_registry.core.auth import KeyAuthenticator, Principal, Role
from tests.provisioning.apps import PREFIX, problem, running_app
from tests.provisioning.receiver import Receiver

ACME = "tenant-acme-0123456789"
GLOBEX = "tenant-globex-0123456789"


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def test_a_tenant_key_authenticates_as_its_tenant() -> None:
    auth = KeyAuthenticator(
        {"billing": "service-key-0123456789"}, tenant_keys={"acme": [ACME, ACME + "-new"], "globex": GLOBEX}
    )
    assert await auth.authenticate(bearer(ACME)) == Principal(account="acme", role=Role.SERVICE, tenant="acme")
    assert await auth.authenticate(bearer(ACME + "-new")) == Principal(account="acme", role=Role.SERVICE, tenant="acme")
    assert (await auth.authenticate(bearer(GLOBEX))).tenant == "globex"  # type: ignore[union-attr]
    service = await auth.authenticate(bearer("service-key-0123456789"))
    assert service == Principal(account="billing", role=Role.SERVICE)
    assert service is not None
    assert service.tenant is None
    assert await auth.authenticate(bearer("tenant-acme-01234567890")) is None


async def test_dev_mode_names_a_tenant_in_a_header() -> None:
    auth = KeyAuthenticator(dev_mode=True)
    principal = await auth.authenticate({"x-dev-account": "alice", "x-dev-tenant": "acme"})
    assert principal == Principal(account="alice", role=Role.SERVICE, tenant="acme")
    assert (await auth.authenticate({"x-dev-account": "alice"})).tenant is None  # type: ignore[union-attr]
    closed = KeyAuthenticator()
    assert await closed.authenticate({"x-dev-account": "alice", "x-dev-tenant": "acme"}) is None


def test_tenant_keys_come_from_the_environment_as_tenant_equals_key() -> None:
    config = RegistryConfig.from_env({"REGISTRY_TENANT_KEYS": f"acme={ACME}, globex={GLOBEX},acme={ACME}-2"})
    assert config.tenant_keys == {"acme": (ACME, f"{ACME}-2"), "globex": GLOBEX}
    shown = dict((name, value) for name, value, _ in config.to_env())
    assert shown["REGISTRY_TENANT_KEYS"] == "acme=te******,acme=te******,globex=te******"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"tenant_keys": {"acme": "short"}}, "REGISTRY_TENANT_KEYS (tenant_keys) account 'acme': expected a key of 16"),
        (
            {"tenant_keys": {"acme": ACME}, "service_keys": {"billing": ACME}},
            "expected a key of its own, got te******, the key of REGISTRY_SERVICE_KEYS",
        ),
        (
            {"tenant_keys": {"ops": ACME}, "admin_keys": {"ops": GLOBEX}},
            "REGISTRY_TENANT_KEYS (tenant_keys) tenant 'ops': expected a tenant named unlike every service and admin",
        ),
        ({"tenant_keys": {"a,b": ACME}}, "expected an account name without ',', '=' or outer spaces"),
    ],
)
def test_tenant_keys_are_checked_like_every_key(settings: dict[str, object], expected: str) -> None:
    with pytest.raises(RegistryConfigurationError) as caught:
        RegistryConfig(**settings)  # type: ignore[arg-type]
    assert expected in str(caught.value)
    assert ACME not in str(caught.value)
    assert GLOBEX not in str(caught.value)


class SignedTokenAuthenticator:
    """A host's own tokens: ``<tenant>.<user>.<hmac>``, signed with the host's secret (a stand-in for a JWT)."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def issue(self, tenant: str, user: str) -> str:
        signature = hmac.new(self.secret, f"{tenant}.{user}".encode(), hashlib.sha256).digest()
        return f"{tenant}.{user}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"

    async def authenticate(self, headers: Mapping[str, str]) -> Principal | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        tenant, _, rest = token.partition(".")
        user, _, _ = rest.partition(".")
        if scheme.lower() != "bearer" or not (tenant and user):
            return None
        if not hmac.compare_digest(token, self.issue(tenant, user)):
            return None
        return Principal(account=user, role=Role.SERVICE, tenant=tenant)


async def test_a_host_maps_its_own_tokens_to_tenant_principals(tmp_path: Path) -> None:
    tokens = SignedTokenAuthenticator(b"host-secret")
    acme = {"Authorization": f"Bearer {tokens.issue('acme', 'alice')}"}
    globex = {"Authorization": f"Bearer {tokens.issue('globex', 'bob')}"}
    async with Receiver() as receiver, running_app("sqlite", tmp_path, receiver, authenticator=tokens) as app:
        body = {"slug": "billing", "name": "Billing", "version": "1"}
        assert (await app.client.post("/api/v1/registry/register", json=body, headers=acme)).status_code == 201
        started = await app.start("billing", "quick", headers=acme)
        assert (await app.detail(started["id"], acme))["service_slug"] == "billing"
        problem(await app.client.get(f"{PREFIX}/workflows/{started['id']}", headers=globex), 404, "workflow_not_found")
        forged = {"Authorization": f"Bearer {tokens.issue('acme', 'alice')[:-2]}xx"}
        problem(await app.client.get(f"{PREFIX}/workflows", headers=forged), 401, "authentication_required")
