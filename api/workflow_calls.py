"""Starting booking workflows and calling their updates and query, with errors mapped to HTTP.

Update rejections (``workflows.errors``) keep their message: ``WrongCaller`` -> 403,
``WrongState``/``LimitReached`` -> 409, ``InvalidRequest`` -> 400. A closed or missing
workflow is 409 ``booking_closed``; a timeout or an activity that could not finish is 503.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError, BadRequest, Conflict, Forbidden, ServiceUnavailable
from workflows import BookingWorkflow, booking_workflow_id
from workflows.types import (
    AuthorizePaymentRequest,
    BookingInput,
    BookingView,
    CancellationRequest,
    CancellationResult,
    EmergencyCancelRequest,
    EmergencyCancelResult,
    PaymentAuthorization,
    ReportTransactionRequest,
    TransactionReport,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")
# `type: ignore[arg-type]` on execute_update below: temporalio's stubs type an `async def`
# update's return as the coroutine itself, so mypy rejects the (correct) typed reference.
MEMO_REQUEST_HASH = "request_hash"
MEMO_CREATED_BY = "created_by"
# Namespace for booking ids derived from (user, Idempotency-Key): a replay maps to the same id.
IDEMPOTENCY_NAMESPACE = uuid.UUID("6c1f7f2e-4a5b-4c1e-9d0a-b00c0e5c0001")

_REJECTIONS: dict[str, tuple[type[ApiError], str]] = {
    "WrongCaller": (Forbidden, "wrong_caller"),
    "WrongState": (Conflict, "wrong_state"),
    "LimitReached": (Conflict, "limit_reached"),
    "InvalidRequest": (BadRequest, "invalid_request"),
}


def booking_id_for(user_id: str, idempotency_key: str | None) -> uuid.UUID:
    """A fresh id, or the same id for every request of one user with one Idempotency-Key."""
    if idempotency_key is None:
        return uuid.uuid4()
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, json.dumps([user_id, idempotency_key]))


def request_hash(fields: Mapping[str, Any]) -> str:
    """SHA-256 of the normalized request, to tell a replay from a reused key."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_conflict() -> Conflict:
    """The 409 for an Idempotency-Key reused with a different request."""
    return Conflict(
        "this Idempotency-Key was already used with a different request",
        code="idempotency_conflict",
    )


@dataclass(frozen=True, kw_only=True)
class StartOutcome:
    workflow_id: str
    replayed: bool


def _handle(client: Client, booking_id: str) -> WorkflowHandle[BookingWorkflow, BookingView]:
    return client.get_workflow_handle_for(BookingWorkflow.run, booking_workflow_id(booking_id))


async def start_booking(
    client: Client,
    booking: BookingInput,
    *,
    task_queue: str,
    fingerprint: str,
    created_by: str,
) -> StartOutcome:
    """Start the booking's workflow; an existing one with the same fingerprint is a replay."""
    workflow_id = booking_workflow_id(booking.booking_id)
    try:
        await _call(_start(client, booking, workflow_id, task_queue, fingerprint, created_by))
    except WorkflowAlreadyStartedError:
        description = await _call(client.get_workflow_handle(workflow_id).describe())
        if (await description.memo()).get(MEMO_REQUEST_HASH) != fingerprint:
            raise idempotency_conflict() from None
        return StartOutcome(workflow_id=workflow_id, replayed=True)
    log.info("booking workflow started", workflow_id=workflow_id)
    return StartOutcome(workflow_id=workflow_id, replayed=False)


async def _start(
    client: Client,
    booking: BookingInput,
    workflow_id: str,
    task_queue: str,
    fingerprint: str,
    created_by: str,
) -> None:
    await client.start_workflow(
        BookingWorkflow.run,
        booking,
        id=workflow_id,
        task_queue=task_queue,
        # A booking id is used once, ever: a replay must find, not restart, its workflow.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        memo={MEMO_REQUEST_HASH: fingerprint, MEMO_CREATED_BY: created_by},
    )


def _translate(exc: Exception) -> ApiError | None:
    if isinstance(exc, WorkflowUpdateFailedError):
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type in _REJECTIONS:
            error_type, code = _REJECTIONS[cause.type]
            return error_type(cause.message, code=code)
        log.warning("booking update failed", cause=type(cause).__name__, message=str(cause))
        return ServiceUnavailable(
            "the booking could not complete the request; retry later", code="update_failed"
        )
    if isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError):
        return ServiceUnavailable("the booking did not answer in time", code="update_timeout")
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


async def _call(awaitable: Awaitable[T]) -> T:
    try:
        return await awaitable
    except (WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError, RPCError) as exc:
        translated = _translate(exc)
        if translated is None:
            raise
        raise translated from None
    except RuntimeError as exc:
        if _is_connect_failure(exc):
            raise _unreachable() from None
        raise


async def authorize_payment(
    client: Client, booking_id: str, request: AuthorizePaymentRequest
) -> PaymentAuthorization:
    """Run the `authorize_payment` update."""
    handle = _handle(client, booking_id)
    return await _call(handle.execute_update(BookingWorkflow.authorize_payment, request))  # type: ignore[arg-type]


async def report_transaction(
    client: Client, booking_id: str, request: ReportTransactionRequest
) -> TransactionReport:
    """Run the `report_transaction` update."""
    handle = _handle(client, booking_id)
    return await _call(handle.execute_update(BookingWorkflow.report_transaction, request))  # type: ignore[arg-type]


async def request_cancellation(
    client: Client, booking_id: str, request: CancellationRequest
) -> CancellationResult:
    """Run the `request_cancellation` update."""
    handle = _handle(client, booking_id)
    return await _call(handle.execute_update(BookingWorkflow.request_cancellation, request))  # type: ignore[arg-type]


async def emergency_cancel(
    client: Client, booking_id: str, request: EmergencyCancelRequest
) -> EmergencyCancelResult:
    """Run the operator's `emergency_cancel` update."""
    handle = _handle(client, booking_id)
    return await _call(handle.execute_update(BookingWorkflow.emergency_cancel, request))  # type: ignore[arg-type]


async def live_view(client: Client, booking_id: str) -> BookingView | None:
    """The workflow's `status` query, or None when it cannot answer (the row still can)."""
    try:
        return await _handle(client, booking_id).query(BookingWorkflow.status)
    except (RPCError, WorkflowQueryFailedError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and not _is_connect_failure(exc):
            raise
        log.info("booking status query failed", booking_id=booking_id, error=type(exc).__name__)
        return None
