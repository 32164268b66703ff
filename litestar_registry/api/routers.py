"""How every Router the plugin mounts is built, so that none of them can miss what the others have.

Each gets the host's guards, the registry's problem+json error handlers, the body limit and the request hook
(:mod:`litestar_registry.api.hooks`). A feature that may be missing (provisioning, webhooks) puts its availability
first among its own guards, so that without it every route answers 501 before a credential or a body is looked at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from litestar import Router
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ControllerRouterHandler, ExceptionHandlersMap, Guard

from litestar_registry.api import hooks
from litestar_registry.api.problems import exception_handlers

__all__ = ("Feature", "registry_router", "requires")


class Feature(Protocol):
    """A part of the registry that may be off or not installed: ``require`` raises a 501 problem then."""

    def require(self) -> object:
        """The running feature, or the 501 problem that says why there is none."""
        ...


def requires(feature: Feature) -> Guard:
    """A guard that answers 501 when ``feature`` is not running."""

    def available(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        feature.require()

    return available


def registry_router(
    *,
    path: str,
    route_handlers: Sequence[ControllerRouterHandler],
    dependencies: Mapping[str, Provide],
    guards: Sequence[Guard],
    tags: Sequence[str],
    include_in_schema: bool,
    max_body_bytes: int,
    handlers: ExceptionHandlersMap | None = None,
) -> Router:
    """A Router at ``path`` with the host's ``guards`` (then any of its own), problem+json errors and the request hook.

    ``handlers`` replaces the registry's exception handlers (a dialect that words its errors differently).
    """
    return Router(
        path=path,
        route_handlers=list(route_handlers),
        dependencies=dict(dependencies),
        exception_handlers=exception_handlers() if handlers is None else handlers,
        guards=list(guards),
        tags=list(tags),
        include_in_schema=include_in_schema,
        request_max_body_size=max_body_bytes,
        before_request=hooks.before_request,
    )
