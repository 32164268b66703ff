"""Callback tokens: 256 random bits handed to an external service, of which only a SHA-256 hash is ever stored.

A token names one waiting step of one run of a workflow. It is single-use (the store claims it with a conditional
write) and expires with its step's timeout. :func:`classify` tells the three ways a token can be refused apart:
unknown (never issued), used (claimed before, or its step stopped waiting) and expired.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any

import msgspec

from litestar_registry.provisioning.errors import CallbackTokenExpired, CallbackTokenUnknown, CallbackTokenUsed

__all__ = (
    "TOKEN_BYTES",
    "CallbackTokenRecord",
    "TokenState",
    "classify",
    "hash_token",
    "issue_token",
    "raise_for",
)

TOKEN_BYTES = 32
"""256 bits of randomness from the operating system's CSPRNG (``secrets``)."""
_MAX_TOKEN_LENGTH = 512


class TokenState(enum.StrEnum):
    """What a presented token turns out to be."""

    VALID = "valid"
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"


class CallbackTokenRecord(msgspec.Struct, kw_only=True, frozen=True):
    """What the store keeps about a token: its hash, the step it opens, when it expires and whether it was used.

    ``payload`` is the callback as claimed (credentials sealed), kept until it is ``delivered`` to the workflow, so a
    claim whose delivery was interrupted (a crash between the two) is delivered again.
    """

    token_hash: str
    tenant: str
    workflow_id: str
    step: str
    run: int
    dbos_workflow_id: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    payload: dict[str, Any] | None = None
    delivered: bool = False


def issue_token() -> tuple[str, str]:
    """A new token and its hash: hand out the first, store only the second."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    """The hex SHA-256 of ``token``.

    A token is 256 random bits, so a plain hash (no salt, no stretching) suffices: nothing smaller than the token
    itself can be guessed from it.
    """
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_LENGTH:
        return hashlib.sha256(b"").hexdigest() + "-invalid"  # matches no stored hash
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def classify(record: CallbackTokenRecord | None, now: datetime) -> TokenState:
    """Whether ``record`` (looked up by hash; ``None`` when nothing matched) may be used at ``now``."""
    if record is None:
        return TokenState.UNKNOWN
    if record.used_at is not None:
        return TokenState.USED
    if now >= record.expires_at:
        return TokenState.EXPIRED
    return TokenState.VALID


def raise_for(state: TokenState) -> None:
    """Raise the domain error of a refused token; return for a valid one."""
    if state is TokenState.UNKNOWN:
        raise CallbackTokenUnknown("no waiting step has this callback token")
    if state is TokenState.USED:
        raise CallbackTokenUsed("this callback token was used already")
    if state is TokenState.EXPIRED:
        raise CallbackTokenExpired("this callback token has expired")


def same_hash(left: str, right: str) -> bool:
    """Constant-time comparison of two hashes (for stores that compare in Python)."""
    return hmac.compare_digest(left.encode(), right.encode())
