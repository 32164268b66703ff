"""RFC 9457 problem responses for the registry routes only (the host's own errors keep their shape).

What an error means in HTTP is decided here for both dialects: the TTL dialect renders the same statuses (and logs
its failures the same way) in its own ``{"detail"}`` shape.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_410_GONE,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_501_NOT_IMPLEMENTED,
)
from litestar.types import ExceptionHandlersMap

from litestar_registry.api.schemas import FieldError, Problem
from litestar_registry.core import errors
from litestar_registry.provisioning import errors as provisioning_errors
from litestar_registry.webhooks import errors as webhook_errors

__all__ = (
    "PROBLEM_MEDIA_TYPE",
    "STATUS_BY_ERROR",
    "TOO_DEEP",
    "exception_handlers",
    "invalid_fields",
    "log_unexpected",
    "problem_response",
    "problems",
    "request_id",
    "status_of",
)

logger = logging.getLogger("litestar_registry")

PROBLEM_MEDIA_TYPE = "application/problem+json"

STATUS_BY_ERROR: Mapping[type[errors.RegistryError], int] = {
    errors.ServiceNotFound: HTTP_404_NOT_FOUND,
    errors.ServiceExists: HTTP_409_CONFLICT,
    errors.ServiceConflict: HTTP_409_CONFLICT,
    errors.StaleWrite: HTTP_409_CONFLICT,
    errors.IllegalTransition: HTTP_409_CONFLICT,
    errors.AuthenticationRequired: HTTP_401_UNAUTHORIZED,
    errors.AccessDenied: HTTP_403_FORBIDDEN,
    errors.InvalidInput: HTTP_422_UNPROCESSABLE_ENTITY,
    errors.NotImplementedFeature: HTTP_501_NOT_IMPLEMENTED,
    provisioning_errors.WorkflowNotFound: HTTP_404_NOT_FOUND,
    provisioning_errors.CallbackTokenUnknown: HTTP_404_NOT_FOUND,
    provisioning_errors.CallbackTokenUsed: HTTP_409_CONFLICT,
    provisioning_errors.CallbackTokenExpired: HTTP_410_GONE,
    webhook_errors.SubscriptionNotFound: HTTP_404_NOT_FOUND,
    webhook_errors.DeliveryNotFound: HTTP_404_NOT_FOUND,
}
"""The HTTP status of each core error, in both dialects."""

TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Too many requests",
    500: "Internal server error",
    501: "Not implemented",
}

CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 422: "invalid_input"}

TOO_DEEP = "the request body is nested too deeply to decode"
"""The 400 answer to JSON nested past what the decoder takes (msgspec raises ``RecursionError``, not a decode error)."""


def status_of(exc: errors.RegistryError) -> int:
    """The status a core error answers with, in either dialect: its entry in :data:`STATUS_BY_ERROR`, else 500."""
    return next((status for kind, status in STATUS_BY_ERROR.items() if isinstance(exc, kind)), 500)


def request_id(request: Request[Any, Any, Any]) -> str:
    """The request's id: the caller's ``X-Request-ID`` when it sends a sane one, else a fresh one (cached)."""
    state = request.scope.setdefault("state", {})
    found = state.get("registry_request_id")
    if found is None:
        sent = request.headers.get("x-request-id", "")
        found = sent if 0 < len(sent) <= 128 and sent.isprintable() else uuid.uuid4().hex
        state["registry_request_id"] = found
    return str(found)


def log_unexpected(request: Request[Any, Any, Any], exc: BaseException, status: int) -> str:
    """Log a server error with its traceback and trace id, so that the id a caller reports finds it; return the id."""
    trace_id = request_id(request)
    logger.error(
        "litestar-registry: %s %s answered %s (trace id %s)",
        request.method,
        request.url.path,
        status,
        trace_id,
        exc_info=exc,
    )
    return trace_id


def problem_response(
    request: Request[Any, Any, Any],
    status: int,
    code: str,
    detail: str,
    *,
    field_errors: list[FieldError] | None = None,
    extensions: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[Problem]:
    """A problem+json response for ``request``; ``extensions`` are the problem's own members (``slug``, ...)."""
    problem = Problem(
        type=f"urn:litestar-registry:problem:{code}",
        title=TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=request.url.path,
        code=code,
        trace_id=request_id(request),
        errors=field_errors,
        **(extensions or {}),
    )
    return Response(problem, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=dict(headers or {}))


def _registry_error(request: Request[Any, Any, Any], exc: errors.RegistryError) -> Response[Problem]:
    status = status_of(exc)
    extensions = dict(exc.extra)
    field = extensions.pop("field", None)
    field_errors = [FieldError(field=str(field), message=exc.detail)] if field else None
    headers = {"WWW-Authenticate": 'Bearer realm="registry"'} if status == HTTP_401_UNAUTHORIZED else None
    return problem_response(
        request, status, exc.code, exc.detail, field_errors=field_errors, extensions=extensions, headers=headers
    )


_NAMED_FIELD = re.compile(r"(?:missing required|contains unknown) field `([^`]+)`")


def invalid_fields(exc: ValidationException) -> list[tuple[str, FieldError]]:
    """``(source, error)`` for each failure Litestar reports, for both dialects' error shapes.

    ``source`` is where it was (``body``, ``header``, ``query``...); the field is a dotted path (``endpoints[0].name``;
    a missing or unknown field by its name, not as Litestar's ``data``).
    """
    found = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid"))
        source = str(item.get("source") or "body")
        key = str(item.get("key") or source)
        named = _NAMED_FIELD.search(message)
        if named:
            key = named.group(1) if key == "data" else f"{key}.{named.group(1)}"
        found.append((source, FieldError(field=key, message=message)))
    return found


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Problem]:
    found = [error for _, error in invalid_fields(exc)]
    detail = "the request is not valid" if found else str(exc.detail)
    return problem_response(request, HTTP_422_UNPROCESSABLE_ENTITY, "invalid_input", detail, field_errors=found or None)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    status = exc.status_code
    code = CODES.get(status, f"http_{status}")
    if status >= HTTP_500_INTERNAL_SERVER_ERROR:
        log_unexpected(request, exc, status)
        return problem_response(request, status, code, TITLES.get(status, TITLES[500]), headers=exc.headers)
    return problem_response(request, status, code, exc.detail, headers=exc.headers)


def _too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Problem]:
    return problem_response(request, HTTP_400_BAD_REQUEST, "bad_request", TOO_DEEP)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    log_unexpected(request, exc, HTTP_500_INTERNAL_SERVER_ERROR)
    return problem_response(request, HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", TITLES[500])


def exception_handlers() -> ExceptionHandlersMap:
    """Handlers for the registry Router: domain errors, validation (422), HTTP errors, JSON too deep (400), the rest."""
    return {
        errors.RegistryError: _registry_error,
        ValidationException: _validation_error,
        HTTPException: _http_error,
        RecursionError: _too_deep,
        Exception: _unexpected,
    }


ALWAYS = (400, 422, 500)
"""Every registry route can answer these: malformed input (400), invalid input (422), an unexpected failure (500).
Listing 400 here also replaces the ``{status_code, detail}`` schema Litestar documents for it by default."""


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem responses a route can give (plus those in ``ALWAYS``)."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=TITLES.get(status, "Error"),
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
        for status in sorted({*ALWAYS, *statuses})
    }
