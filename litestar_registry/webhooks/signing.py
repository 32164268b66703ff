"""Secrets and signatures per Standard Webhooks v1, signed by the ``standardwebhooks`` package itself.

A secret is ``whsec_`` followed by the standard base64 of 24 to 64 random bytes; the registry makes one of 32 bytes
unless an admin brings their own. A delivery carries ``webhook-id``, ``webhook-timestamp`` (whole seconds since the
epoch) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, one for each secret in
use, separated by spaces (the newest first), so a subscriber that knows either secret verifies during a rotation.

``standardwebhooks`` takes the timestamp as a ``datetime`` and reads it as UTC whatever its offset says (it replaces
the zone instead of converting), so only UTC datetimes reach it: :func:`signature_headers` converts first.
"""

from __future__ import annotations

import base64
import binascii
import math
import secrets as random
from collections.abc import Sequence
from datetime import UTC, datetime

from litestar_registry.core.clock import utc
from litestar_registry.core.errors import InvalidInput

__all__ = (
    "MAX_SECRET_BYTES",
    "MIN_SECRET_BYTES",
    "SECRET_PREFIX",
    "check_secret",
    "new_secret",
    "signature_headers",
)

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
_NEW_SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(random.token_bytes(_NEW_SECRET_BYTES)).decode("ascii")


def check_secret(secret: str, field: str = "secret") -> str:
    """``secret`` if it is a well-formed Standard Webhooks secret; ``InvalidInput`` (naming ``field``) otherwise.

    The message never repeats the value: an error is not a place for a secret.
    """
    expected = (
        f"{field} must be '{SECRET_PREFIX}' followed by the standard base64 of {MIN_SECRET_BYTES} to "
        f"{MAX_SECRET_BYTES} random bytes"
    )
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX) or not secret.isascii():
        raise InvalidInput(expected, field=field)
    try:
        raw = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(expected, field=field) from None
    if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
        raise InvalidInput(expected, field=field)
    return secret


def signature_headers(*, webhook_id: str, at: datetime, body: str, secrets: Sequence[str]) -> dict[str, str]:
    """The three Standard Webhooks headers of a delivery sent at ``at``, signed with every one of ``secrets``.

    ``at`` is taken in UTC and floored to the second, as the timestamp header carries it.
    """
    from standardwebhooks.webhooks import Webhook

    if not secrets:
        raise ValueError("a delivery is signed with at least one secret")
    seconds = math.floor(utc(at).timestamp())
    timestamp = datetime.fromtimestamp(seconds, UTC)  # UTC, whole seconds: what the header says is what is signed
    signatures = [Webhook(secret).sign(webhook_id, timestamp, body) for secret in secrets]
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(seconds),
        "webhook-signature": " ".join(signatures),
    }
