"""Idempotent booking creation: one booking id per (user, Idempotency-Key), replays answered.

A replay of a recorded booking is answered from its row (`recorded_replay`). Otherwise
`create_once` makes one call to Temporal, update-with-start of the workflow's ``recorded``
update: concurrent requests with one key join one workflow, and each gets the booking as the
workflow recorded it, with the start input that won (its terms tell a replay from a reused key;
its request id tells the request that created it). The same key with a different request is 409
``idempotency_conflict``; a booking Postgres refused is 422 ``booking_unrecordable``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.booking_reads import get_booking
from api.errors import ApiError, Conflict, ServiceUnavailable, Unprocessable
from api.temporal_errors import UPDATE_TIMEOUT, answered
from db.models import Booking
from workflows.client import BookingClient
from workflows.types import BookingInput, BookingStatus, RecordedBooking

log = structlog.get_logger(__name__)

T = TypeVar("T")

MEMO_REQUEST_HASH = "request_hash"
MEMO_CREATED_BY = "created_by"
# Namespace for booking ids derived from (user, Idempotency-Key): a replay maps to the same id.
IDEMPOTENCY_NAMESPACE = uuid.UUID("6c1f7f2e-4a5b-4c1e-9d0a-b00c0e5c0001")


@dataclass(frozen=True, kw_only=True)
class Creation:
    """A booking as its workflow recorded it, and whether another request created it."""

    recorded: RecordedBooking
    replayed: bool


def booking_id_for(user_id: str, idempotency_key: str | None) -> uuid.UUID:
    """A fresh id, or the same id for every request of one user with one Idempotency-Key."""
    if idempotency_key is None:
        return uuid.uuid4()
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, json.dumps([user_id, idempotency_key]))


def fingerprint(booking: BookingInput) -> str:
    """SHA-256 of the request's booking terms, to tell a replay from a reused key."""
    fields = {
        "service_id": booking.service_id,
        "provider_id": booking.provider_id,
        "customer_id": booking.customer_id,
        "customer_wallet": booking.customer_wallet,
        "provider_wallet": booking.provider_wallet,
        "inviter_wallet": booking.inviter_wallet,
        "amount_units": booking.amount_units,
        "scheduled_at": booking.scheduled_at.isoformat(),
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_conflict() -> Conflict:
    """The 409 for an Idempotency-Key reused with a different request."""
    return Conflict(
        "this Idempotency-Key was already used with a different request",
        code="idempotency_conflict",
    )


async def recorded_replay(
    sessions: async_sessionmaker[AsyncSession], booking: BookingInput
) -> Booking | None:
    """The recorded booking this request replays, None if none is recorded; 409 if another.

    Answered from Postgres, never by starting a workflow: after Temporal's retention the id
    would be free to start a second run.
    """
    async with sessions() as session:
        existing = await get_booking(session, uuid.UUID(booking.booking_id))
    if existing is not None and not _same_booking(existing, booking):
        raise idempotency_conflict()
    return existing


async def create_once(
    client: Client, booking: BookingInput, *, task_queue: str, created_by: str, within: float
) -> Creation | None:
    """Create the booking in one call to its workflow, which answers once the row is written.

    None: the workflow had already closed (or was gone by the time the update reached it), so
    only its row can answer (else `unanswered`). 409 when the booking of this id has other terms, 422 when Postgres refused it, 503
    ``booking_pending`` when the workflow did not answer `within` seconds.
    """
    request_id = uuid.uuid4().hex
    memo = {MEMO_REQUEST_HASH: fingerprint(booking), MEMO_CREATED_BY: created_by}
    mine = dataclasses.replace(booking, request_id=request_id)
    try:
        recorded = await answered(
            _unless_missing(
                BookingClient.create(
                    client,
                    mine,
                    task_queue=task_queue,
                    memo=memo,
                    answer_within=timedelta(seconds=within),
                )
            )
        )
    except WorkflowAlreadyStartedError:
        return None
    except ServiceUnavailable as exc:
        if exc.code != UPDATE_TIMEOUT:
            raise
        raise await unanswered(client, booking) from None
    if recorded is None:
        return None
    if fingerprint(recorded.booking) != fingerprint(booking):
        raise idempotency_conflict()
    if recorded.stored is None:
        raise unrecordable(recorded.view.reason)
    replayed = recorded.booking.request_id != request_id
    log.info("booking created", booking_id=booking.booking_id, replayed=replayed)
    return Creation(recorded=recorded, replayed=replayed)


async def unanswered(client: Client, booking: BookingInput) -> ApiError:
    """Why the booking's workflow gave no answer and it has no row: another request's terms
    (409), Postgres refused it (422), or not recorded yet (503: retry with the same key).

    No workflow at all is a 503 too, never 409 ``booking_closed``: a start whose RPC timed out
    (a server slow after an outage) may never have been persisted, and nothing was created.
    """
    workflow = BookingClient.for_booking(client, booking.booking_id)
    description = await answered(_unless_missing(workflow.describe()))
    if description is None:
        return ServiceUnavailable(
            "the booking was not started; retry with the same Idempotency-Key",
            code="booking_not_started",
        )
    if (await description.memo()).get(MEMO_REQUEST_HASH) != fingerprint(booking):
        return idempotency_conflict()
    if description.status is WorkflowExecutionStatus.COMPLETED:
        view = await answered(workflow.result())
        if view.status is BookingStatus.FAILED and view.transitions == 0:
            return unrecordable(view.reason)
    return ServiceUnavailable(
        "the booking was accepted but is not recorded yet; retry with the same Idempotency-Key",
        code="booking_pending",
    )


async def _unless_missing(call: Awaitable[T]) -> T | None:
    """The call's answer, or None when Temporal has no such workflow (NOT_FOUND), which
    `answered` would otherwise call a closed booking (409)."""
    try:
        return await call
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            return None
        raise


def unrecordable(reason: str | None) -> Unprocessable:
    """The 422 for a booking Postgres refused for good (its workflow ended FAILED)."""
    return Unprocessable(
        reason or "the booking could not be stored: Postgres refused it",
        code="booking_unrecordable",
    )


def _same_booking(row: Booking, booking: BookingInput) -> bool:
    """Whether the recorded booking is the one this request describes."""
    return (
        row.service_id == booking.service_id
        and row.provider_id == booking.provider_id
        and row.customer_id == booking.customer_id
        and row.customer_wallet == booking.customer_wallet
        and row.provider_wallet == booking.provider_wallet
        and row.inviter_wallet == booking.inviter_wallet
        and row.amount_units == booking.amount_units
        and row.scheduled_at == booking.scheduled_at
    )
