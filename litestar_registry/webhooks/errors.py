"""Errors of the webhooks layer: core ``RegistryError`` subclasses whose ``code`` the HTTP layer maps."""

from __future__ import annotations

from litestar_registry.core.errors import NotImplementedFeature, RegistryError

__all__ = ("DeliveryNotFound", "SubscriptionNotFound", "WebhooksUnavailable")


class SubscriptionNotFound(RegistryError):
    """No webhook subscription has that id (404)."""

    code = "subscription_not_found"


class DeliveryNotFound(RegistryError):
    """No delivery has that ``webhook-id`` (404)."""

    code = "delivery_not_found"


class WebhooksUnavailable(NotImplementedFeature):
    """Webhooks are off, or the ``workflows`` extra is not installed (501); the detail says which.

    The extra brings DBOS, cryptography, httpx and standardwebhooks.
    """

    code = "webhooks_unavailable"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or "webhooks need the 'workflows' extra: pip install 'litestar-registry[workflows]'")
