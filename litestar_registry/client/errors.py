"""What the client raises: the registry unreachable, an error answer (problem+json or not), an unreadable answer."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import msgspec

from litestar_registry.client.models import FieldError

__all__ = (
    "ProblemError",
    "RegistryClientError",
    "RegistryHTTPError",
    "RegistryUnavailable",
    "UnexpectedResponse",
    "error_from_response",
    "parse_retry_after",
)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class RegistryClientError(Exception):
    """Base of everything the client raises."""

    @property
    def retryable(self) -> bool:
        """Whether trying again may succeed (the registry unreachable or overloaded), not a refusal as such."""
        return False


class RegistryUnavailable(RegistryClientError):
    """The registry could not be reached, or did not answer in time."""

    @property
    def retryable(self) -> bool:
        """Always: the registry may be back soon."""
        return True


class UnexpectedResponse(RegistryClientError):
    """A success status whose body is not the shape the dialect promises (a proxy's page, a truncated body)."""

    @property
    def retryable(self) -> bool:
        """Always: whatever answered in the registry's place may be gone soon."""
        return True

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class RegistryHTTPError(RegistryClientError):
    """The registry (or something in front of it) answered with an error status.

    ``code``, ``trace_id`` and ``errors`` are filled from a problem+json body (:class:`ProblemError`); the TTL
    dialect's ``{"detail": ...}`` fills ``detail`` (and ``errors`` for a 422).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str | None = None,
        trace_id: str | None = None,
        errors: list[FieldError] | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(f"{status}: {detail}" + (f" ({code})" if code else ""))
        self.status = status
        self.detail = detail
        self.code = code
        self.trace_id = trace_id
        self.errors = errors or []
        self.retry_after = retry_after
        """Seconds the registry asked the client to wait (``Retry-After``), if it said."""
        self.body = body
        """The decoded body, for members this class does not name (``dependents``, ``service_status``, ...)."""

    @property
    def retryable(self) -> bool:
        """5xx and 429: the registry is down or overloaded; anything else is a refusal."""
        return self.status >= 500 or self.status == 429

    @property
    def gone(self) -> bool:
        """404 or 410: the registry does not know the service (expired, or the registry lost its state)."""
        return self.status in (404, 410)


class ProblemError(RegistryHTTPError):
    """An RFC 9457 ``application/problem+json`` error from the registry dialect."""

    def __init__(self, status: int, problem: dict[str, Any], *, retry_after: float | None = None) -> None:
        errors = [msgspec.convert(item, FieldError) for item in problem.get("errors") or [] if _is_field_error(item)]
        super().__init__(
            status,
            str(problem.get("detail") or problem.get("title") or ""),
            code=_str_or_none(problem.get("code")),
            trace_id=_str_or_none(problem.get("trace_id")),
            errors=errors,
            retry_after=retry_after,
            body=problem,
        )
        self.type = _str_or_none(problem.get("type"))
        self.title = _str_or_none(problem.get("title"))
        self.instance = _str_or_none(problem.get("instance"))


def _is_field_error(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("field"), str) and isinstance(item.get("message"), str)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date (``now`` is epoch seconds)."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if seconds == seconds else None  # NaN is no answer


def error_from_response(response: httpx.Response) -> RegistryHTTPError:
    """The exception for an error response, keeping whatever its body says."""
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    try:
        body = msgspec.json.decode(response.content) if response.content else None
    except msgspec.DecodeError:
        body = None
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if isinstance(body, dict) and (media_type == PROBLEM_MEDIA_TYPE or ("code" in body and "status" in body)):
        return ProblemError(status, body, retry_after=retry_after)
    if isinstance(body, dict) and "detail" in body:
        detail, errors = _ttl_detail(body["detail"])
        return RegistryHTTPError(status, detail, errors=errors, retry_after=retry_after, body=body)
    text = response.text.strip()[:200] if body is None else str(body)[:200]
    return RegistryHTTPError(status, text or response.reason_phrase, retry_after=retry_after, body=body)


def _ttl_detail(detail: Any) -> tuple[str, list[FieldError]]:
    """The TTL dialect's ``detail``: a message, or a list of ``{loc, msg}`` (a 422)."""
    if not isinstance(detail, list):
        return str(detail), []
    errors = [
        FieldError(field=".".join(str(part) for part in item.get("loc", [])), message=str(item.get("msg", "")))
        for item in detail
        if isinstance(item, dict)
    ]
    return "; ".join(f"{error.field}: {error.message}" for error in errors) or "invalid request", errors
