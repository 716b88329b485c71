"""Booking transitions through the real store, and waiting for the relay's rounds."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime

from temporalio.testing import ActivityEnvironment

from activities import BookingStore
from activities.webhooks import WebhookDispatcher
from tests.workflows.fakes import completion_event, make_booking, payment_event
from workflows.audit import AuditAction
from workflows.types import (
    BookingInput,
    BookingStatus,
    ChainEventKind,
    EventOutcome,
    Settlement,
    TransitionRecord,
)

S = BookingStatus


def _record(booking: BookingInput, seq: int, to: S, frm: S, action: AuditAction, **extra):
    return TransitionRecord(
        booking_id=booking.booking_id,
        dedupe_key=f"{booking.booking_id}:{seq}:{action}",
        from_status=frm,
        to_status=to,
        action=action,
        occurred_at=datetime.now(UTC),
        **extra,
    )


async def paid_booking(store: BookingStore) -> BookingInput:
    """A booking recorded and paid: one `booking.paid` event."""
    env = ActivityEnvironment()
    booking = make_booking()
    await env.run(store.record_booking, booking)
    event = payment_event(booking)
    await env.run(
        store.apply_transition,
        _record(
            booking, 1, S.PAID, S.PENDING_PAYMENT, AuditAction.PAYMENT_CONFIRMED,
            event=event, event_outcome=EventOutcome.PROCESSED,
        ),
    )  # fmt: skip
    return booking


async def complete(store: BookingStore, booking: BookingInput) -> None:
    """PAID -> COMPLETED with its settlement: one `booking.completed` event."""
    done = completion_event(booking)
    assert done.completion is not None
    settlement = Settlement(
        kind=ChainEventKind.COMPLETION,
        provider_amount=done.completion.provider_amount,
        platform_amount=done.completion.platform_fee,
        inviter_amount=done.completion.inviter_fee,
    )
    await ActivityEnvironment().run(
        store.apply_transition,
        _record(
            booking, 2, S.COMPLETED, S.PAID, AuditAction.SERVICE_COMPLETED,
            event=done, event_outcome=EventOutcome.PROCESSED, settlement=settlement,
        ),
    )  # fmt: skip


async def drain(
    dispatcher: WebhookDispatcher, done: Callable[[], bool], what: str, seconds: float = 15.0
) -> None:
    """Run relay rounds (as the workflow does) until ``done``."""
    loop = asyncio.get_running_loop()
    stop = loop.time() + seconds
    while not done():
        if loop.time() > stop:
            raise AssertionError(f"never happened: {what}")
        await dispatcher.dispatch_once()
        await asyncio.sleep(0.02)


def signatures(header: str) -> tuple[int, list[str]]:
    parts = [part.split("=", 1) for part in header.split(",")]
    timestamp = next(int(v) for k, v in parts if k == "t")
    return timestamp, [v for k, v in parts if k == "v1"]


def expected_signature(secret: str, timestamp: int, body: bytes) -> str:
    """Computed here from the documented scheme, not with the code under test."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
