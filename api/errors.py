"""One JSON error shape for every failure, the exceptions that produce it, and their handlers.

    Exception
     └── ApiError                 answered as ``{"code", "message", "details"}`` with ``status``
          ├── BadRequest          400 the request is well-formed JSON but not acceptable
          ├── Unauthorized        401 missing, malformed, expired or unverifiable bearer token
          ├── Forbidden           403 authenticated, but not allowed to do this
          ├── NotFound            404 no such booking (or not one the caller may see)
          ├── Conflict            409 the booking's state or an idempotency key forbids it
          ├── PayloadTooLarge     413 the body is over the configured maximum (checked first)
          ├── InvalidField        422 a field breaks a rule that needs settings or the clock
          ├── Unprocessable       422 valid, but Postgres refused to store it (the booking FAILED)
          ├── TooManyRequests     429 rate limited; ``Retry-After`` says when to come back
          └── ServiceUnavailable  503 Postgres or Temporal is unreachable; retry later

Validation errors (422) name the offending field. Outages of Postgres or Temporal that escape
a handler become 503 with ``Retry-After``; anything else becomes a 500 with no internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError, RPCStatusCode

from db.errors import is_outage

log = structlog.get_logger(__name__)

RETRY_AFTER_OUTAGE_SECONDS = 5


class ErrorDetail(BaseModel):
    """One problem with one input field."""

    field: str = Field(description="Dotted location of the field, e.g. `body.amount`.")
    message: str


class ErrorBody(BaseModel):
    """Every error response: a stable machine code and a human message."""

    code: str = Field(description="Stable identifier, e.g. `wrong_state`, `rate_limited`.")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ApiError(Exception):
    """An error answered with `status` and the shared error body."""

    status = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        details: list[ErrorDetail] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.headers = dict(headers or {})
        self.details = details or []


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "body_too_large"


class TooManyRequests(ApiError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = retry_after


class ServiceUnavailable(ApiError):
    status = 503
    code = "service_unavailable"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retry_after: int = RETRY_AFTER_OUTAGE_SECONDS,
    ) -> None:
        super().__init__(message, code=code, headers={"Retry-After": str(retry_after)})


_DESCRIPTIONS = {
    400: "The request is not acceptable (message says why).",
    401: "Missing, malformed or expired bearer token.",
    403: "The caller may not do this (not a party to the booking, or not an operator).",
    404: "No such booking visible to the caller.",
    409: "The booking's state, or an idempotency key, conflicts with the request.",
    413: "The request body is larger than the configured maximum.",
    422: "A field failed validation; `details` names it.",
    429: "Rate limited; retry after `Retry-After` seconds.",
    503: "Postgres or Temporal is unavailable; retry after `Retry-After` seconds.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the shared error body for `statuses`."""
    return {s: {"model": ErrorBody, "description": _DESCRIPTIONS[s]} for s in statuses}


def _json(status: int, body: ErrorBody, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body.model_dump(), headers=dict(headers or {}))


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def error_response(exc: ApiError) -> JSONResponse:
    """The response for `exc` (also for ASGI middleware that answers before the app runs)."""
    body = ErrorBody(code=exc.code, message=exc.message, details=exc.details)
    return _json(exc.status, body, exc.headers)


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        ErrorDetail(field=_field_path(err.get("loc", ())), message=str(err.get("msg", "invalid")))
        for err in exc.errors()
    ]
    first = details[0] if details else ErrorDetail(field="request", message="invalid")
    message = f"{first.field}: {first.message}"
    return _json(422, ErrorBody(code="validation_error", message=message, details=details))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # The framework's only 400: a body that is not decodable JSON (e.g. invalid UTF-8).
        detail = ErrorDetail(field="body", message=str(exc.detail))
        message = f"body: {exc.detail}"
        return _json(422, ErrorBody(code="validation_error", message=message, details=[detail]))
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return _json(
        exc.status_code, ErrorBody(code=code, message=str(exc.detail)), exc.headers or None
    )


# CANCELLED too: the API cancels no Temporal call, so a call in flight when the connection broke
# is what comes back that way ("operation was canceled").
_TEMPORAL_OUTAGE = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.CANCELLED,
    }
)


# The core SDK's status when the connection to Temporal breaks under it (a proxy or balancer in
# front of a server that went away still accepts the TCP connection): no answer, an outage.
_TRANSPORT_ERROR = "transport error"


def _temporal_outage(exc: RPCError) -> bool:
    return exc.status in _TEMPORAL_OUTAGE or (
        exc.status is RPCStatusCode.UNKNOWN and exc.message == _TRANSPORT_ERROR
    )


async def _temporal_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RPCError)
    if _temporal_outage(exc):
        log.warning("temporal unavailable", status=exc.status.name)
        err: ApiError = ServiceUnavailable(
            "the workflow service is unavailable; retry later", code="temporal_unavailable"
        )
    else:
        log.error("temporal call failed", status=exc.status.name, message=exc.message)
        err = ApiError("the workflow service refused the request")
    return await _api_error(_, err)


async def _database_error(_: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable", error=type(exc).__name__)
    err = ServiceUnavailable(
        "the database is unavailable; retry later", code="database_unavailable"
    )
    return await _api_error(_, err)


async def _pool_exhausted(_: Request, exc: Exception) -> JSONResponse:
    # Every connection of this process in use for the pool's whole timeout: overloaded, not
    # broken; another replica or a moment later can serve it.
    log.warning("database pool exhausted", error=type(exc).__name__)
    err = ServiceUnavailable("the database is busy; retry later", code="database_busy")
    return await _api_error(_, err)


async def _outage(_: Request, exc: Exception) -> JSONResponse:
    log.warning("backing service unavailable", error=type(exc).__name__)
    err = ServiceUnavailable(
        "a backing service is unavailable; retry later", code="dependency_unavailable"
    )
    return await _api_error(_, err)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", error=type(exc).__name__)
    return _json(500, ErrorBody(code="internal_error", message="internal error"))


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception the app can raise to the shared error body."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RPCError, _temporal_error)
    for db_error in (OperationalError, InterfaceError):
        app.add_exception_handler(db_error, _database_error)
    app.add_exception_handler(PoolTimeout, _pool_exhausted)
    for outage in (OSError, TimeoutError):  # ConnectionError is an OSError
        app.add_exception_handler(outage, _outage)
    app.add_exception_handler(DBAPIError, _db_api_error)
    app.add_exception_handler(Exception, _unexpected)


def is_database_outage(exc: DBAPIError) -> bool:
    return is_outage(exc)


async def _db_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if is_database_outage(exc):
        return await _database_error(request, exc)
    return await _unexpected(request, exc)


class Unprocessable(ApiError):
    """A 422 for a request every rule accepted but Postgres refused for good (no field to name)."""

    status = 422
    code = "unprocessable"


class InvalidField(ApiError):
    """A 422 for a rule that needs configuration or the clock (cap, schedule), naming the field."""

    status = 422
    code = "validation_error"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", details=[ErrorDetail(field=field, message=message)])
