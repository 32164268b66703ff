"""``RegistryClient``: both dialects of a registry over one pooled httpx connection set."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from litestar_registry.client.errors import RegistryUnavailable, UnexpectedResponse, error_from_response
from litestar_registry.client.models import (
    Heartbeat,
    HeartbeatAck,
    Registered,
    Registration,
    Service,
    ServiceEntrypoints,
    TtlPong,
    TtlRegistered,
    TtlRegistration,
    TtlService,
)

__all__ = ("RegistryClient", "TtlDialectClient")

T = TypeVar("T")


class _Meta(msgspec.Struct, kw_only=True):
    request_id: str | None = None
    next_cursor: str | None = None


class _Envelope(msgspec.Struct, Generic[T], kw_only=True):
    data: T
    meta: _Meta = msgspec.field(default_factory=_Meta)


class _TtlList(msgspec.Struct, kw_only=True):
    services: list[TtlService]


_JSON = {"Content-Type": "application/json"}


class RegistryClient:
    """An async client of a litestar-registry (or any registry speaking its dialects).

    One ``httpx.AsyncClient`` (one connection pool) serves every call; use the client as an async context manager,
    or call :meth:`aclose`. Registry-dialect calls send ``Authorization: Bearer <token>``; TTL-dialect calls (through
    :attr:`ttl`) send ``X-Service-Key``. Errors raise :class:`~litestar_registry.client.RegistryClientError`
    subclasses: :class:`~litestar_registry.client.ProblemError` for a problem+json answer.

    Args:
        base_url: Where the registry's host app answers, e.g. ``http://registry:8000``.
        token: The service account's key, sent as a bearer token to the registry dialect.
        service_key: The TTL dialect's ``X-Service-Key``.
        registry_path: Where the registry dialect is mounted (the server's ``path``).
        ttl_path: Where the TTL dialect is mounted (the server's ``ttl_path``).
        timeout: Seconds for connecting, and for each read and write.
        headers: Extra headers for every request.
        http: A ready ``httpx.AsyncClient`` to use instead of opening one (its ``base_url`` is used as is; closing
            it stays with its owner).
    """

    def __init__(
        self,
        base_url: str = "",
        *,
        token: str | None = None,
        service_key: str | None = None,
        registry_path: str = "/api/v1",
        ttl_path: str = "/v2/services",
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._owns_http = http is None
        self.http = http if http is not None else httpx.AsyncClient(base_url=base_url, timeout=timeout)
        """The underlying connection pool."""
        self._extra = dict(headers or {})
        self._registry = registry_path.rstrip("/")
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self.ttl = TtlDialectClient(self, ttl_path.rstrip("/"), service_key)
        """The TTL dialect (``$register``, ``$ping``) on the same connections."""

    async def aclose(self) -> None:
        """Close the connection pool (unless it was passed in)."""
        if self._owns_http:
            await self.http.aclose()

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- plumbing ----------------------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request; a non-2xx answer raises the matching error, a transport failure ``RegistryUnavailable``."""
        sent = {**self._extra, **(headers or {})}
        content = None
        if body is not None:
            content = msgspec.json.encode(body)
            sent.update(_JSON)
        try:
            response = await self.http.request(method, path, content=content, params=params, headers=sent)
        except httpx.TimeoutException as exc:
            raise RegistryUnavailable(f"{method} {path}: the registry did not answer in time ({exc!r})") from exc
        except httpx.TransportError as exc:
            raise RegistryUnavailable(f"{method} {path}: the registry is not reachable ({exc!r})") from exc
        if not response.is_success:
            raise error_from_response(response)
        return response

    @staticmethod
    def decode(response: httpx.Response, kind: type[T]) -> T:
        """Decode a success body as ``kind``; a body of another shape raises ``UnexpectedResponse``."""
        try:
            return msgspec.json.decode(response.content, type=kind)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UnexpectedResponse(
                f"{response.request.method} {response.request.url.path} answered {response.status_code} with a body "
                f"that is not a {getattr(kind, '__name__', kind)}: {exc}",
                status=response.status_code,
            ) from exc

    def _path(self, *parts: str) -> str:
        return "/".join([self._registry, *parts])

    async def _data(self, method: str, path: str, kind: type[T], *, body: Any = None) -> T:
        response = await self.request(method, path, body=body, headers=self._auth)
        return self.decode(response, _Envelope[kind]).data  # type: ignore[valid-type]

    async def _pages(self, path: str, kind: type[T], params: dict[str, Any]) -> AsyncIterator[T]:
        seen: set[str] = set()
        while True:
            response = await self.request("GET", path, params=params, headers=self._auth)
            page = self.decode(response, _Envelope[list[kind]])  # type: ignore[valid-type]
            for item in page.data:
                yield item
            cursor = page.meta.next_cursor
            if not cursor:
                return
            if cursor in seen:
                raise UnexpectedResponse(f"GET {path} handed out the cursor {cursor!r} twice", status=200)
            seen.add(cursor)
            params = {**params, "cursor": cursor}

    # --- registry dialect: writes -----------------------------------------------------------------------------

    async def register(self, registration: Registration) -> Registered:
        """Register a new service (``POST``); a slug that is already live answers 409 ``service_exists``."""
        return await self._data("POST", self._path("registry", "register"), Registered, body=registration)

    async def update(self, registration: Registration) -> Registered:
        """Re-register a live or pending service (``PUT``): idempotent; ``changed`` says whether it did anything."""
        return await self._data("PUT", self._path("registry", "register"), Registered, body=registration)

    async def deregister(self, slug: str, *, reason: str | None = None) -> None:
        """Deregister a service; refused (409) while it has active dependents."""
        body = {"slug": slug} if reason is None else {"slug": slug, "reason": reason}
        await self.request("DELETE", self._path("registry", "register"), body=body, headers=self._auth)

    async def heartbeat(self, heartbeat: Heartbeat | str) -> HeartbeatAck:
        """Send a heartbeat (a bare slug reports ``healthy``); 404 when the registry no longer knows the service."""
        beat = Heartbeat(slug=heartbeat) if isinstance(heartbeat, str) else heartbeat
        return await self._data("POST", self._path("registry", "heartbeat"), HeartbeatAck, body=beat)

    # --- registry dialect: reads ------------------------------------------------------------------------------

    async def get(self, slug: str) -> Service:
        """One service as it stands now, whatever its status."""
        return await self._data("GET", self._path("registry", "services", quote(slug, safe="")), Service)

    def iter_services(
        self,
        *,
        status: str | Iterable[str] | None = None,
        tag: str | None = None,
        capability: str | None = None,
        q: str | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[Service]:
        """Every service matching all the filters given, page after page, in slug order.

        Without ``status`` the registry leaves out expired and deregistered services.
        """
        params: dict[str, Any] = {"tag": tag, "capability": capability, "q": q, "limit": page_size}
        params["status"] = [status] if isinstance(status, str) else list(status) if status is not None else None
        params = {key: value for key, value in params.items() if value is not None}
        return self._pages(self._path("registry", "services"), Service, params)

    async def list_services(
        self,
        *,
        status: str | Iterable[str] | None = None,
        tag: str | None = None,
        capability: str | None = None,
        q: str | None = None,
        page_size: int | None = None,
    ) -> list[Service]:
        """:meth:`iter_services`, collected: every page."""
        found = self.iter_services(status=status, tag=tag, capability=capability, q=q, page_size=page_size)
        return [service async for service in found]

    def iter_entrypoints(
        self, *, capability: str | None = None, protocol: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[ServiceEntrypoints]:
        """The entrypoints of every active service offering ``capability``, speaking ``protocol``, page after page."""
        params = {"capability": capability, "protocol": protocol, "limit": page_size}
        params = {key: value for key, value in params.items() if value is not None}
        return self._pages(self._path("entrypoints"), ServiceEntrypoints, params)

    async def entrypoints(
        self, *, capability: str | None = None, protocol: str | None = None, page_size: int | None = None
    ) -> list[ServiceEntrypoints]:
        """:meth:`iter_entrypoints`, collected: every page."""
        found = self.iter_entrypoints(capability=capability, protocol=protocol, page_size=page_size)
        return [item async for item in found]

    async def service_entrypoints(self, slug: str) -> ServiceEntrypoints:
        """The entrypoints of one active service (404 when it is not active)."""
        return await self._data("GET", self._path("entrypoints", quote(slug, safe="")), ServiceEntrypoints)


class TtlDialectClient:
    """The TTL dialect (seed 004) on a :class:`RegistryClient`'s connections: ``client.ttl.register(...)``."""

    def __init__(self, client: RegistryClient, path: str, service_key: str | None) -> None:
        self._client = client
        self._root = path
        self._key = {"X-Service-Key": service_key} if service_key else {}

    def _path(self, *parts: str) -> str:
        return "/".join([self._root, *parts])

    async def register(self, registration: TtlRegistration) -> TtlRegistered:
        """Register or re-register (latest wins)."""
        response = await self._client.request("POST", self._path("$register"), body=registration, headers=self._key)
        return self._client.decode(response, TtlRegistered)

    async def ping(self, service_id: str) -> TtlPong:
        """Reset the service's TTL; 404 once it is unknown or expired (the cue to register again)."""
        response = await self._client.request("PUT", self._path(quote(service_id, safe=""), "$ping"), headers=self._key)
        return self._client.decode(response, TtlPong)

    async def deregister(self, service_id: str) -> None:
        """Remove the service."""
        await self._client.request("DELETE", self._path(quote(service_id, safe="")), headers=self._key)

    async def get(self, service_id: str) -> TtlService:
        """One live service; 404 once it went silent past its TTL."""
        response = await self._client.request("GET", self._path(quote(service_id, safe="")))
        return self._client.decode(response, TtlService)

    async def list_services(self) -> list[TtlService]:
        """Every live service."""
        response = await self._client.request("GET", self._root or "/")
        return self._client.decode(response, _TtlList).services
