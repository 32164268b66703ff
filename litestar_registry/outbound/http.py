"""Outbound HTTP under the URL policy: a connection pinned to the checked address, no redirects, bounded reads.

The request goes to the address the policy checked, with the original ``Host`` header and (for HTTPS) the original
name for SNI and certificate verification, so DNS cannot swap the address between the check and the connection.
Proxies from the environment are ignored for the same reason. A 3xx answer is returned as is, never followed.
:meth:`OutboundHTTP.send` also bounds the whole exchange by one deadline and reads at most a given number of bytes of
the answer's body, so a peer can neither hold a caller nor fill its memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from litestar_registry.outbound.policy import OutboundURLPolicy, Resolver

__all__ = ("BoundedResponse", "OutboundHTTP")


@dataclass(frozen=True, kw_only=True)
class BoundedResponse:
    """An answer whose body was read up to a limit: ``truncated`` when the peer sent more."""

    status_code: int
    headers: httpx.Headers
    body: bytes
    truncated: bool


class OutboundHTTP:
    """Sends the registry's outbound requests under an :class:`OutboundURLPolicy`.

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

    @asynccontextmanager
    async def _pinned(
        self, method: str, url: str, headers: Mapping[str, str] | None, client_timeout: float, **build: Any
    ) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.Request]]:
        """A client and the request to ``url``, sent to the address the policy checked (``OutboundURLRefused``)."""
        target = await self.policy.resolve(url, self._resolver)
        original = httpx.URL(url)
        pinned = original.copy_with(host=target.addresses[0])
        send_headers = {**(headers or {}), "Host": original.netloc.decode("ascii")}
        extensions: dict[str, Any] = {"sni_hostname": target.host} if target.scheme == "https" else {}
        async with httpx.AsyncClient(
            transport=self._transport, follow_redirects=False, trust_env=False, timeout=client_timeout
        ) as client:
            yield client, client.build_request(method, pinned, headers=send_headers, extensions=extensions, **build)

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
        timeout = timeout_seconds if timeout_seconds is not None else self.timeout_seconds
        async with self._pinned(method, url, headers, timeout, json=json) as (client, request):
            return await client.send(request)

    async def send(
        self,
        method: str,
        url: str,
        *,
        content: bytes,
        headers: Mapping[str, str],
        timeout_seconds: float,
        max_body_bytes: int,
    ) -> BoundedResponse:
        """Send ``content`` to ``url`` and read at most ``max_body_bytes`` of the answer, all within one deadline.

        Raises:
            OutboundURLRefused: the policy refuses the URL.
            TimeoutError: the exchange (resolution, connection, request, answer) took longer than ``timeout_seconds``.
            httpx.HTTPError: the connection failed.
        """
        async with asyncio.timeout(timeout_seconds):
            send_headers = {**headers, "Accept-Encoding": "identity"}  # the limit counts the bytes on the wire
            async with self._pinned(method, url, send_headers, timeout_seconds, content=content) as (client, request):
                response = await client.send(request, stream=True)
                try:
                    body = bytearray()
                    truncated = False
                    async for chunk in response.aiter_raw():
                        body += chunk
                        if len(body) > max_body_bytes:
                            del body[max_body_bytes:]
                            truncated = True
                            break
                finally:
                    await response.aclose()
        return BoundedResponse(
            status_code=response.status_code, headers=response.headers, body=bytes(body), truncated=truncated
        )
