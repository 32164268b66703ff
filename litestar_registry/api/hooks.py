"""What every request to the registry's Routers goes through before its handler (their ``before_request``).

- ``OPTIONS`` is answered with an ``Allow`` header that lists every method of the path. Litestar builds a path's
  ``OPTIONS`` handler with the first route handler registered for that path, and a Controller registers its handlers
  one at a time: ``OPTIONS /registry/register`` listed only ``DELETE``. The app's finished route map knows them all.
- A query parameter given twice is refused (422), unless it takes a list (``status``, ``state``): which one would
  count?
- Then the app's own ``before_request``, if the host set one: a controller's hook replaces the app's for its routes.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import ValidationException
from litestar.status_codes import HTTP_204_NO_CONTENT

__all__ = ("LIST_PARAMETERS", "allowed_methods", "before_request")

LIST_PARAMETERS = frozenset({"status", "state", "topic"})
"""The query parameters that may be given more than once."""

_TYPED_PARAMETER = re.compile(r":[^}]+}")


def allowed_methods(request: Request[Any, Any, Any]) -> list[str]:
    """Every method the app routes for the path that ``request`` matched."""
    template = request.scope.get("path_template", request.url.path)
    methods: set[str] = set()
    for path, handlers in request.app.route_handler_method_map.items():
        if _TYPED_PARAMETER.sub("}", path) == template:
            methods.update(str(method) for method in handlers if method not in ("asgi", "websocket"))
    return sorted(methods)


async def before_request(request: Request[Any, Any, Any]) -> Any:
    """Answer ``OPTIONS``, refuse a repeated single-valued query parameter, then run the app's own hook."""
    if request.method == "OPTIONS":
        allow = ", ".join(allowed_methods(request))
        return Response(None, status_code=HTTP_204_NO_CONTENT, headers={"Allow": allow}, media_type="text/plain")
    if request.scope.get("query_string"):  # most hot requests (pings, heartbeats) have none: nothing to parse
        query = request.query_params
        repeated = sorted(key for key in query if key not in LIST_PARAMETERS and len(query.getall(key)) > 1)
        if repeated:
            raise ValidationException(
                "a query parameter is given more than once",
                extra=[{"key": key, "source": "query", "message": "given more than once"} for key in repeated],
            )
    outer = request.app.before_request
    if outer is None:
        return None
    result = outer(request)
    return await result if inspect.isawaitable(result) else result
