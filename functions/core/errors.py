"""Errors every layer raises; the HTTP toolkit renders them as SPEC §9 error objects (R29).

Stdlib only, so the pure domains may raise them.
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


class ApiError(Exception):
    """An error a client can act on. ``status`` and ``code`` reach the client unchanged."""

    status = 400
    code = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = dict(details or {})
        if field is not None:
            self.details["field"] = field

    @property
    def field(self) -> str | None:
        return self.details.get("field")

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class BadRequest(ApiError):
    """400: the input is invalid; ``field`` names the offending field (R29)."""

    status = 400
    code = "invalid_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    """403: the caller's role may not use this operation at all (R28)."""

    status = 403
    code = "forbidden"


class NotFound(ApiError):
    """404: absent, or outside the caller's tenant or account scope: the two look the same (R28)."""

    status = 404
    code = "not_found"


class Conflict(ApiError):
    """409: the request is valid but the resource's state refuses it (``invalid_state``,
    ``locked_by_reseller``, ``idempotency_key_reused`` …)."""

    status = 409
    code = "invalid_state"


class ConcurrentUpdate(Conflict):
    """409: someone else changed the resource between our read and our conditional write."""

    code = "concurrent_update"

    def __init__(self, message: str = "the resource was changed concurrently; retry") -> None:
        super().__init__(message)


class MethodNotAllowed(ApiError):
    """405: the path exists, the method does not; ``details.allowed`` lists the ones it has."""

    status = 405
    code = "method_not_allowed"


class NotAcceptable(ApiError):
    """406: no representation the route has matches the request's ``Accept``."""

    status = 406
    code = "not_acceptable"


class PayloadTooLarge(ApiError):
    """413: the request body is larger than the API reads (``details.limit`` bytes)."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    """415: the body's ``Content-Type`` is not one the route reads (JSON)."""

    status = 415
    code = "unsupported_media_type"


def path_not_found() -> NotFound:
    """The one answer for a path the API does not have (R28: like anything absent), wherever it
    is made: the local gateway (``local/gateway.py``) and API Gateway's gateway responses
    (``infra/template.py``) alike."""
    return NotFound("no such path")


class Missing(Exception):
    """A record or value the code has just written, checked or derived is not there: a defect or
    a deletion behind the code's back, never the client's doing (a 500, logged). Raised by
    ``present`` where a type checker needs a value narrowed (``assert`` vanishes under -O)."""


def present(value: T | None, what: str) -> T:
    """``value``, which the caller knows is there; ``Missing`` naming ``what`` if it is not."""
    if value is None:
        raise Missing(f"{what} is missing")
    return value
