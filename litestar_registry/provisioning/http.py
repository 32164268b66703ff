"""Outbound HTTP, shared with webhook deliveries: see :mod:`litestar_registry.outbound.http`."""

from __future__ import annotations

from litestar_registry.outbound.http import BoundedResponse, OutboundHTTP

__all__ = ("BoundedResponse", "OutboundHTTP")
