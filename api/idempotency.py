"""Idempotent booking creation: one booking id per (user, Idempotency-Key), replays answered.

A replay of a recorded booking is answered from its row (`recorded_replay`); one whose workflow
started but is not recorded yet is recognised by the request fingerprint in the workflow's memo
(`start_once`). The same key with a different request is 409 ``idempotency_conflict``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.booking_reads import get_booking
from api.errors import Conflict
from api.temporal_errors import answered
from db.models import Booking
from workflows.client import BookingClient
from workflows.types import BookingInput

log = structlog.get_logger(__name__)

MEMO_REQUEST_HASH = "request_hash"
MEMO_CREATED_BY = "created_by"
# Namespace for booking ids derived from (user, Idempotency-Key): a replay maps to the same id.
IDEMPOTENCY_NAMESPACE = uuid.UUID("6c1f7f2e-4a5b-4c1e-9d0a-b00c0e5c0001")


@dataclass(frozen=True, kw_only=True)
class StartOutcome:
    workflow_id: str
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


async def start_once(
    client: Client, booking: BookingInput, *, task_queue: str, created_by: str
) -> StartOutcome:
    """Start the booking's workflow; an existing one with the same fingerprint is a replay."""
    request_hash = fingerprint(booking)
    memo = {MEMO_REQUEST_HASH: request_hash, MEMO_CREATED_BY: created_by}
    try:
        started = await answered(
            BookingClient.start(client, booking, task_queue=task_queue, memo=memo)
        )
    except WorkflowAlreadyStartedError:
        existing = BookingClient.for_booking(client, booking.booking_id)
        description = await answered(existing.describe())
        if (await description.memo()).get(MEMO_REQUEST_HASH) != request_hash:
            raise idempotency_conflict() from None
        return StartOutcome(workflow_id=existing.workflow_id, replayed=True)
    log.info("booking workflow started", workflow_id=started.workflow_id)
    return StartOutcome(workflow_id=started.workflow_id, replayed=False)


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
