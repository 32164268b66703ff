"""Where the registry may send requests: a policy checked on every outbound URL, after name resolution.

Provisioning steps and webhook deliveries share it. A URL given by a tenant (``inputs.provisioning_url``), by a
registered service or by a webhook subscription would otherwise let anyone make the registry call into its own network
(SSRF). The policy refuses, unless the host allows them explicitly: loopback and
unspecified addresses, private and shared ranges (RFC 1918, CGNAT, unique-local IPv6, and anything else that is not
globally routable), and link-local addresses (cloud metadata services live there). Every address a name resolves to
must pass, and the request is then sent to the checked address itself (see :mod:`.http`), so a name that resolves
differently a moment later (DNS rebinding) gains nothing. URLs with user info, or schemes other than HTTP(S), are
refused. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from litestar_registry.core.errors import RegistryError

__all__ = ("IPAddress", "OutboundURLPolicy", "OutboundURLRefused", "Resolver", "Target", "system_resolver")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""Resolves a host name and port to IP address strings."""

_MAX_URL_LENGTH = 2048


class OutboundURLRefused(RegistryError):
    """The outbound URL policy refuses the address (loopback, private range, scheme, a host not allowed)."""

    code = "outbound_url_refused"


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver, without blocking the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, kw_only=True)
class Target:
    """A URL that passed the policy, with the addresses its host resolved to (each of them allowed)."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class OutboundURLPolicy:
    """Which outbound URLs the registry may call. Closed by default: only public addresses over HTTP(S)."""

    allow_loopback: bool = False
    """Loopback (127.0.0.0/8, ::1) and unspecified (0.0.0.0, ::) addresses: a demo on one machine needs them."""
    allow_private: bool = False
    """Addresses that are not globally routable: RFC 1918, CGNAT (100.64.0.0/10), unique-local IPv6, and the like."""
    allow_link_local: bool = False
    """169.254.0.0/16 and fe80::/10, where cloud metadata services answer; apart from ``allow_private`` on purpose."""
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    """Host names (or literal addresses) allowed whatever they resolve to, compared case-insensitively."""
    schemes: frozenset[str] = frozenset({"https", "http"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_hosts", frozenset(host.lower().strip("[]") for host in self.allowed_hosts))

    def check_syntax(self, url: str) -> tuple[str, str, int]:
        """The scheme, host and port of ``url`` if its form is allowed; ``OutboundURLRefused`` otherwise."""
        if not isinstance(url, str) or not url or len(url) > _MAX_URL_LENGTH or any(ch.isspace() for ch in url):
            raise OutboundURLRefused("the outbound URL is empty, too long or contains whitespace")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise OutboundURLRefused("the outbound URL cannot be parsed") from None
        scheme = parts.scheme.lower()
        if scheme not in self.schemes:
            raise OutboundURLRefused(f"outbound URLs must use {' or '.join(sorted(self.schemes))}, not {scheme!r}")
        if parts.username is not None or parts.password is not None:
            raise OutboundURLRefused("outbound URLs may not carry user info")
        host = (parts.hostname or "").lower()
        if not host:
            raise OutboundURLRefused("the outbound URL has no host")
        return scheme, host, port if port is not None else (443 if scheme == "https" else 80)

    def check_address(self, address: str | IPAddress) -> None:
        """``OutboundURLRefused`` unless the policy allows connecting to ``address``."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if ip.is_loopback or ip.is_unspecified:
            if not self.allow_loopback:
                raise OutboundURLRefused(f"outbound requests to loopback address {ip} are not allowed")
            return
        if ip.is_link_local:
            if not self.allow_link_local:
                raise OutboundURLRefused(f"outbound requests to link-local address {ip} are not allowed")
            return
        if (not ip.is_global or ip.is_multicast or ip.is_reserved) and not self.allow_private:
            raise OutboundURLRefused(f"outbound requests to private or reserved address {ip} are not allowed")

    async def resolve(self, url: str, resolver: Resolver | None = None) -> Target:
        """Check ``url``'s form, resolve its host and check every address; the :class:`Target` to connect to."""
        scheme, host, port = self.check_syntax(url)
        allowed_by_name = host in self.allowed_hosts
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses: Sequence[str] = [str(literal)]
        else:
            try:
                addresses = await (resolver or system_resolver)(host, port)
            except OSError as exc:
                raise OutboundURLRefused(f"the outbound host {host!r} does not resolve ({exc})") from None
            if not addresses:
                raise OutboundURLRefused(f"the outbound host {host!r} does not resolve")
        if not allowed_by_name:
            for address in addresses:
                self.check_address(address)
        return Target(url=url, scheme=scheme, host=host, port=port, addresses=tuple(addresses))
