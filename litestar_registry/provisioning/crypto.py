"""Credentials at rest: sealed with Fernet (AES-128-CBC and HMAC-SHA256, from ``cryptography``), never stored plain.

A sealed value is the mapping ``{"$sealed": "<Fernet token>"}``: it travels through the DBOS message, the recorded
step outputs and the read model as ciphertext, and is opened only in memory (for a later step, or a host that asks).
Several keys may be configured: the first seals, every one opens (``MultiFernet``), so keys rotate without downtime.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from litestar_registry.provisioning.sealed import SEALED_KEY, is_sealed

__all__ = ("CredentialCipher",)


class CredentialCipher:
    """Seals and opens credentials with the configured Fernet keys (urlsafe base64 of 32 bytes each)."""

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if isinstance(keys, str | bytes):
            keys = [keys]
        if not keys:
            raise ValueError("at least one encryption key is needed to keep credentials")
        fernets = []
        for index, key in enumerate(keys):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                # Never echo the key: an error message is not a place for secrets.
                raise ValueError(
                    f"encryption key #{index + 1} is not a Fernet key (urlsafe base64 of 32 bytes)"
                ) from None
        self._fernet = MultiFernet(fernets)

    @staticmethod
    def generate_key() -> str:
        """A new random key, for configuration."""
        return Fernet.generate_key().decode()

    def seal(self, value: Any) -> dict[str, str]:
        """``value`` (JSON-able) encrypted as ``{"$sealed": token}``."""
        return {SEALED_KEY: self._fernet.encrypt(msgspec.json.encode(value)).decode()}

    def open(self, sealed: Mapping[str, Any]) -> Any:
        """The value inside ``sealed``; ``ValueError`` if no configured key opens it or it was tampered with."""
        if not is_sealed(sealed):
            raise ValueError("not a sealed value")
        try:
            return msgspec.json.decode(self._fernet.decrypt(sealed[SEALED_KEY].encode()))
        except InvalidToken:
            raise ValueError("sealed value cannot be opened with the configured keys") from None

    def open_all(self, value: Any) -> Any:
        """``value`` with every sealed value, at any depth, opened (in memory only)."""
        if is_sealed(value):
            return self.open(value)
        if isinstance(value, Mapping):
            return {key: self.open_all(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.open_all(item) for item in value]
        return value

    def rotate(self, sealed: Mapping[str, Any]) -> dict[str, str]:
        """``sealed`` re-encrypted under the first (newest) key."""
        if not is_sealed(sealed):
            raise ValueError("not a sealed value")
        return {SEALED_KEY: self._fernet.rotate(sealed[SEALED_KEY].encode()).decode()}
