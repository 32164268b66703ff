"""Who is calling: principals, the authenticator protocol, and the default key-based authenticator.

Framework-free: an authenticator sees the request headers as a mapping with lower-case names, nothing else, so a
host can plug in JWT/JWKS or mTLS without touching the core.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Mapping, Sequence
from typing import Protocol, TypeAlias, runtime_checkable

import msgspec

__all__ = (
    "MIN_KEY_LENGTH",
    "AccountKeys",
    "Authenticator",
    "KeyAuthenticator",
    "Principal",
    "Role",
    "check_keys",
    "check_tenants",
    "mask",
)

MIN_KEY_LENGTH = 16
"""Shorter keys are refused: a key is a password that a script can guess at the speed of the network."""

AccountKeys: TypeAlias = Mapping[str, str | Sequence[str]]
"""``{account: key}``, or ``{account: [key, ...]}`` for several keys at once (rotation)."""


class Role(enum.StrEnum):
    """What a principal may do: a service manages its own slugs; an admin manages every slug and approves."""

    SERVICE = "service"
    ADMIN = "admin"


class Principal(msgspec.Struct, kw_only=True, frozen=True):
    """An authenticated caller. ``account``, ``role`` and ``tenant`` come from the credential, never from the body.

    ``tenant`` scopes provisioning: a principal sees and changes only its tenant's workflows, and one without a tenant
    may not use the provisioning routes at all.
    """

    account: str
    role: Role
    tenant: str | None = None

    @property
    def is_admin(self) -> bool:
        """Whether this principal may act on any service."""
        return self.role is Role.ADMIN


@runtime_checkable
class Authenticator(Protocol):
    """Turns request headers into a principal: how a host maps its own tokens (JWT, mTLS headers...) to callers.

    ``headers`` is a mapping with lower-case names. Return ``None`` when they carry no valid credential (the route
    answers 401); set ``Principal.tenant`` for callers that may use the provisioning routes.
    """

    async def authenticate(self, headers: Mapping[str, str]) -> Principal | None:
        """Return the caller, or ``None`` when the headers carry no valid credential."""
        ...


def _keys_of(keys: str | Sequence[str]) -> tuple[str, ...]:
    return (keys,) if isinstance(keys, str) else tuple(keys)


def mask(key: str) -> str:
    """A key as it may appear in a message: stars, after the first two characters of a key long enough to keep it."""
    return (key[:2] if len(key) >= MIN_KEY_LENGTH else "") + "*" * 6


def check_keys(roles: Mapping[str, AccountKeys]) -> list[str]:
    """What is wrong with these keys (``{role name: {account: key(s)}}``), with every key masked; empty when fine.

    Refused: a key shorter than :data:`MIN_KEY_LENGTH`; a key with a space, a comma or a character other than
    visible ASCII (it could not travel in a header, nor be written in ``account=key,...``); an account name that is
    empty or holds ``,`` or ``=``; one key given to two accounts or roles (the registry could not tell who calls).
    """
    problems: list[str] = []
    owners: dict[str, str] = {}
    for role, accounts in roles.items():
        for account, keys in accounts.items():
            if not account.strip() or account != account.strip() or any(char in account for char in ",="):
                problems.append(f"{role}: expected an account name without ',', '=' or outer spaces, got {account!r}")
            for key in _keys_of(keys):
                where = f"{role} account {account!r}"
                if len(key) < MIN_KEY_LENGTH:
                    problems.append(
                        f"{where}: expected a key of {MIN_KEY_LENGTH} characters or more, got {mask(key)} ({len(key)})"
                    )
                elif not (key.isascii() and key.isprintable()) or any(char in key for char in " ,"):
                    problems.append(
                        f"{where}: expected a key of visible ASCII without spaces or commas, got {mask(key)}"
                    )
                elif key in owners and owners[key] != where:
                    problems.append(f"{where}: expected a key of its own, got {mask(key)}, the key of {owners[key]}")
                owners.setdefault(key, where)
    return problems


def check_tenants(tenant_keys: AccountKeys, accounts: AccountKeys, label: str = "tenant") -> list[str]:
    """What is wrong with these tenant names: one named like a service or admin account would share its services."""
    return [
        f"{label} {tenant!r}: expected a tenant named unlike every service and admin account, got one that is both"
        for tenant in tenant_keys
        if tenant in accounts
    ]


class KeyAuthenticator:
    """API keys sent as ``Authorization: Bearer <key>``; ``X-Dev-Account``/``-Role``/``-Tenant`` in dev mode.

    A tenant key authenticates as the service account named after its tenant, with that tenant:
    ``Principal(account=tenant, role=Role.SERVICE, tenant=tenant)``.

    Every configured key is compared, in constant time, whatever matches first, so timing tells nothing about which
    keys exist.
    """

    def __init__(
        self,
        service_keys: AccountKeys | None = None,
        admin_keys: AccountKeys | None = None,
        *,
        tenant_keys: AccountKeys | None = None,
        dev_mode: bool = False,
    ) -> None:
        """Take ``{account: key}`` (or ``{account: [key, ...]}``) per role, and ``{tenant: key}`` for tenants.

        Raises:
            ValueError: a key is too short, one key is given twice, or a tenant is named like a service or admin
                account (the message masks every key).
        """
        problems = check_keys({"service": service_keys or {}, "admin": admin_keys or {}, "tenant": tenant_keys or {}})
        problems += check_tenants(tenant_keys or {}, {**(service_keys or {}), **(admin_keys or {})})
        if problems:
            raise ValueError("; ".join(problems))
        self._keys: list[tuple[bytes, Principal]] = [
            (key.encode(), Principal(account=account, role=role))
            for accounts, role in ((service_keys or {}, Role.SERVICE), (admin_keys or {}, Role.ADMIN))
            for account, keys in accounts.items()
            for key in _keys_of(keys)
        ]
        self._keys += [
            (key.encode(), Principal(account=tenant, role=Role.SERVICE, tenant=tenant))
            for tenant, keys in (tenant_keys or {}).items()
            for key in _keys_of(keys)
        ]
        self.dev_mode = dev_mode

    async def authenticate(self, headers: Mapping[str, str]) -> Principal | None:
        """Match the bearer key (or, in dev mode, the dev headers)."""
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            presented = token.strip().encode()
            found: Principal | None = None
            for key, principal in self._keys:
                if hmac.compare_digest(key, presented) and found is None:
                    found = principal
            return found
        if self.dev_mode and (account := headers.get("x-dev-account")):
            role = Role.ADMIN if headers.get("x-dev-role", "").lower() == Role.ADMIN.value else Role.SERVICE
            return Principal(account=account, role=role, tenant=headers.get("x-dev-tenant") or None)
        return None
