"""Domain errors. The HTTP layer maps each to a status and a problem ``code``; the core never imports HTTP."""

from __future__ import annotations

from typing import Any

__all__ = (
    "AccessDenied",
    "AuthenticationRequired",
    "IllegalTransition",
    "InvalidInput",
    "NotImplementedFeature",
    "RegistryError",
    "ServiceConflict",
    "ServiceExists",
    "ServiceNotFound",
    "StaleWrite",
)


class RegistryError(Exception):
    """Base of every error the core raises on purpose.

    ``extra`` is context for the caller: ``field`` names the invalid input; the rest (``slug``, ``dependents``,
    ``service_status``) is what a dialect may show beside the message. A new key needs a place in each dialect's
    error shape.
    """

    code = "registry_error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class ServiceNotFound(RegistryError):
    """No live service has that slug (unknown, expired, or deregistered)."""

    code = "service_not_found"


class ServiceExists(RegistryError):
    """A create found the slug already taken."""

    code = "service_exists"


class ServiceConflict(RegistryError):
    """The request is valid but the service's state refuses it (active dependents, pending approval, ...)."""

    code = "service_conflict"


class StaleWrite(RegistryError):
    """A conditional write lost a race: the record changed since it was read."""

    code = "stale_write"


class IllegalTransition(RegistryError):
    """The state table has no such transition."""

    code = "illegal_transition"


class AuthenticationRequired(RegistryError):
    """No credentials, or credentials that match nothing."""

    code = "authentication_required"


class AccessDenied(RegistryError):
    """Authenticated, but not allowed to do this (another account's slug, not an admin, ...)."""

    code = "access_denied"


class InvalidInput(RegistryError):
    """Input that passed the wire schema but breaks a rule of the domain."""

    code = "invalid_input"


class NotImplementedFeature(RegistryError):
    """A feature that is not built yet: answered with 501, never with a fake success."""

    code = "not_implemented"
