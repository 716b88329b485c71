"""Temporal's errors on a booking workflow call, answered as HTTP errors.

Update rejections (``workflows.errors``) keep their message: ``WrongCaller`` -> 403,
``WrongState``/``LimitReached`` -> 409, ``InvalidRequest`` -> 400, ``RelayRefused`` by its code
(api/relay_desk.py). A closed or missing
workflow is 409 ``booking_closed``; a timeout or an activity that could not finish is 503.
The ``status`` query is different: when it cannot answer, the row still can (`live_view`).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import structlog
from temporalio.client import (
    Client,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError, BadRequest, Conflict, Forbidden, ServiceUnavailable
from api.relay_desk import relay_refusal
from workflows.client import BookingClient
from workflows.constants import RELAY_REFUSED
from workflows.types import BookingView

log = structlog.get_logger(__name__)

T = TypeVar("T")
# The code of the 503 for an update that got no answer in time (a caller may look further).
UPDATE_TIMEOUT = "update_timeout"

_REJECTIONS: dict[str, tuple[type[ApiError], str]] = {
    "WrongCaller": (Forbidden, "wrong_caller"),
    "WrongState": (Conflict, "wrong_state"),
    "LimitReached": (Conflict, "limit_reached"),
    "InvalidRequest": (BadRequest, "invalid_request"),
}


async def answered(call: Awaitable[T]) -> T:
    """Await a workflow call; Temporal's errors it can name become HTTP errors."""
    try:
        return await call
    except (WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError, RPCError) as exc:
        translated = _translate(exc)
        if translated is None:
            raise
        raise translated from None
    except RuntimeError as exc:
        if _is_connect_failure(exc):
            raise _unreachable() from None
        raise


async def live_view(client: Client, booking_id: str) -> BookingView | None:
    """The workflow's `status` query, or None when it cannot answer (the row still can)."""
    try:
        return await BookingClient.for_booking(client, booking_id).status()
    except (RPCError, WorkflowQueryFailedError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and not _is_connect_failure(exc):
            raise
        log.info("booking status query failed", booking_id=booking_id, error=type(exc).__name__)
        return None


def _translate(exc: Exception) -> ApiError | None:
    if isinstance(exc, WorkflowUpdateFailedError):
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == RELAY_REFUSED:
            return relay_refusal(cause)
        if isinstance(cause, ApplicationError) and cause.type in _REJECTIONS:
            error_type, code = _REJECTIONS[cause.type]
            return error_type(cause.message, code=code)
        log.warning("booking update failed", cause=type(cause).__name__, message=str(cause))
        return ServiceUnavailable(
            "the booking could not complete the request; retry later", code="update_failed"
        )
    if isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError):
        return ServiceUnavailable("the booking did not answer in time", code=UPDATE_TIMEOUT)
    if isinstance(exc, RPCError) and exc.status is RPCStatusCode.NOT_FOUND:
        return Conflict(
            "this booking is closed: it accepts no more requests", code="booking_closed"
        )
    return None


def _is_connect_failure(exc: BaseException) -> bool:
    # A lazy client that cannot reach the server raises a bare RuntimeError from the core SDK.
    return isinstance(exc, RuntimeError) and str(exc).startswith("Failed client connect")


def _unreachable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "the workflow service is unavailable; retry later", code="temporal_unavailable"
    )
