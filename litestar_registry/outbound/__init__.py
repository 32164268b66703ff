"""Outbound requests the registry makes on its own (provisioning steps, webhook deliveries), under one URL policy.

:mod:`.policy` needs nothing beyond the standard library; :mod:`.http` needs httpx (the ``workflows`` extra).
"""

from __future__ import annotations

from litestar_registry.outbound.policy import OutboundURLPolicy, OutboundURLRefused

__all__ = ("OutboundURLPolicy", "OutboundURLRefused")
