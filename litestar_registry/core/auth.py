"""Who is calling: principals, the authenticator protocol, and the default key-based authenticator.

Framework-free: an authenticator sees the request headers as a mapping with lower-case names, nothing else, so a
host can plug in JWT/JWKS or mTLS without touching the core.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import msgspec

__all__ = ("Authenticator", "KeyAuthenticator", "Principal", "Role")


class Role(enum.StrEnum):
    """What a principal may do: a service manages its own slugs; an admin manages every slug and approves."""

    SERVICE = "service"
    ADMIN = "admin"


class Principal(msgspec.Struct, kw_only=True, frozen=True):
    """An authenticated caller. ``account`` comes from the credential, never from the request body."""

    account: str
    role: Role

    @property
    def is_admin(self) -> bool:
        """Whether this principal may act on any service."""
        return self.role is Role.ADMIN


@runtime_checkable
class Authenticator(Protocol):
    """Turns request headers into a principal."""

    async def authenticate(self, headers: Mapping[str, str]) -> Principal | None:
        """Return the caller, or ``None`` when the headers carry no valid credential."""
        ...


class KeyAuthenticator:
    """API keys sent as ``Authorization: Bearer <key>``; ``X-Dev-Account``/``X-Dev-Role`` only in dev mode.

    Every configured key is compared, in constant time, whatever matches first, so timing tells nothing about which
    keys exist.
    """

    def __init__(
        self,
        service_keys: Mapping[str, str] | None = None,
        admin_keys: Mapping[str, str] | None = None,
        *,
        dev_mode: bool = False,
    ) -> None:
        self._keys: list[tuple[bytes, Principal]] = [
            (key.encode(), Principal(account=account, role=role))
            for keys, role in ((service_keys or {}, Role.SERVICE), (admin_keys or {}, Role.ADMIN))
            for key, account in keys.items()
            if key
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
            return Principal(account=account, role=role)
        return None
