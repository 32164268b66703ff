"""Outbound HTTP for provisioning steps: the URL policy, a connection pinned to the checked address, no redirects.

The request goes to the address the policy checked, with the original ``Host`` header and (for HTTPS) the original
name for SNI and certificate verification, so DNS cannot swap the address between the check and the connection.
Proxies from the environment are ignored for the same reason. A 3xx answer is returned as is, never followed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from litestar_registry.provisioning.urlpolicy import OutboundURLPolicy, Resolver

__all__ = ("OutboundHTTP",)


class OutboundHTTP:
    """Sends provisioning's outbound requests under an :class:`OutboundURLPolicy`.

    ``transport`` replaces the network (tests use ``httpx.MockTransport`` or an ASGI transport); ``resolver`` replaces
    name resolution.
    """

    def __init__(
        self,
        policy: OutboundURLPolicy,
        *,
        timeout_seconds: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.policy = policy
        self.timeout_seconds = timeout_seconds
        self._transport = transport
        self._resolver = resolver

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout_seconds: float | None = None,
    ) -> httpx.Response:
        """Send one request to ``url`` once the policy allows it; ``OutboundURLRefused`` if it does not."""
        target = await self.policy.resolve(url, self._resolver)
        original = httpx.URL(url)
        pinned = original.copy_with(host=target.addresses[0])
        send_headers = {**(headers or {}), "Host": original.netloc.decode("ascii")}
        extensions: dict[str, Any] = {"sni_hostname": target.host} if target.scheme == "https" else {}
        timeout = timeout_seconds if timeout_seconds is not None else self.timeout_seconds
        async with httpx.AsyncClient(
            transport=self._transport, follow_redirects=False, trust_env=False, timeout=timeout
        ) as client:
            request = client.build_request(method, pinned, json=json, headers=send_headers, extensions=extensions)
            return await client.send(request)
