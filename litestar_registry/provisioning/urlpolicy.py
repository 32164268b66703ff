"""The outbound URL policy, shared with webhook deliveries: see :mod:`litestar_registry.outbound.policy`."""

from __future__ import annotations

from litestar_registry.outbound.policy import (
    IPAddress,
    OutboundURLPolicy,
    OutboundURLRefused,
    Resolver,
    Target,
    system_resolver,
)

__all__ = ("IPAddress", "OutboundURLPolicy", "OutboundURLRefused", "Resolver", "Target", "system_resolver")
