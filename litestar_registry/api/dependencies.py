"""Router-level dependencies, all under ``registry_`` keys so they never collide with the host's."""

from __future__ import annotations

from typing import Any, TypeVar

from litestar import Controller, Request
from litestar.di import Provide

from litestar_registry.api.pagination import page_size_dependency
from litestar_registry.core.auth import Authenticator, Principal
from litestar_registry.core.errors import AuthenticationRequired
from litestar_registry.core.registry import Registry

__all__ = ("bind", "registry_dependencies")

C = TypeVar("C", bound=type[Controller])


def bind(controller: C, **attributes: Any) -> C:
    """A subclass of ``controller`` whose handlers find ``attributes`` (the registry, settings) on ``self``.

    What is fixed for the Router's lifetime need not be a dependency: Litestar resolves a handler's dependencies on
    every request, and two or more at one level run in an anyio task group (a task each). A hot handler that reads
    the registry from ``self`` and takes only its caller as a dependency resolves it inline.
    """
    return type(controller.__name__, (controller,), {"__module__": controller.__module__, **attributes})  # type: ignore[return-value]


def registry_dependencies(
    registry: Registry, authenticator: Authenticator, *, public_reads: bool
) -> dict[str, Provide]:
    """The Router's dependencies: the Registry, the caller of write routes, and the caller of read routes.

    ``registry_principal`` is required; ``registry_reader`` may be ``None`` when reads are public.
    """

    def provide_core() -> Registry:
        return registry

    async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
        principal = await authenticator.authenticate(request.headers)
        if principal is None:
            raise AuthenticationRequired("send a service account key as 'Authorization: Bearer <key>'")
        return principal

    async def provide_reader(request: Request[Any, Any, Any]) -> Principal | None:
        principal = await authenticator.authenticate(request.headers)
        if principal is None and not public_reads:
            raise AuthenticationRequired("reads need a key as 'Authorization: Bearer <key>' (or public_reads)")
        return principal

    return {
        "registry_core": Provide(provide_core, sync_to_thread=False),
        "registry_principal": Provide(provide_principal),
        "registry_reader": Provide(provide_reader),
        "registry_page_size": page_size_dependency(
            default=registry.policy.default_page_size, maximum=registry.policy.max_page_size
        ),
    }
