"""Stuck-booking detector: past a deadline (payment, auto-complete, cancellation expiry), not final.

The payment deadline and the release time are the booking's own, written to its row when it was
recorded (from the policy frozen in its workflow). Rows from before those columns fall back to
the deadlines today's settings give; a changed setting then only affects such old rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Interval, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from db.base import UtcDateTime
from db.models import Booking, SignatureNonce
from db.statuses import BookingStatus, NonceKind


@dataclass(frozen=True, kw_only=True)
class StuckBooking:
    booking_id: str
    status: str
    deadline: str  # which deadline passed
    due_at: datetime


async def find_stuck(
    session: AsyncSession,
    *,
    payment_deadline: timedelta,
    auto_complete_delay: timedelta,
    grace: timedelta,
    now: datetime | None = None,
    limit: int = 1000,
) -> list[StuckBooking]:
    """Bookings whose deadline plus ``grace`` has passed while they are still non-terminal.

    ``payment_deadline`` and ``auto_complete_delay`` only serve rows that carry no deadlines.
    """
    cutoff = (now or datetime.now(UTC)) - grace
    return [
        *await _unpaid(session, payment_deadline, cutoff, limit),
        *await _unreleased(session, auto_complete_delay, cutoff, limit),
        *await _cancelling(session, cutoff, limit),
    ]


def _deadline(
    recorded: InstrumentedAttribute[datetime | None],
    start: InstrumentedAttribute[datetime],
    delay: timedelta,
) -> ColumnElement[datetime]:
    """The row's own deadline, else ``start + delay`` (rows recorded before the column)."""
    fallback = start + literal(delay, Interval())
    return func.coalesce(recorded, fallback, type_=UtcDateTime())


async def _unpaid(
    session: AsyncSession, payment_deadline: timedelta, cutoff: datetime, limit: int
) -> list[StuckBooking]:
    due = _deadline(Booking.payment_deadline_at, Booking.created_at, payment_deadline)
    rows = await session.execute(
        select(Booking.id, due)
        .where(
            Booking.status == BookingStatus.PENDING_PAYMENT,
            Booking.managed,
            due < cutoff,
        )
        .order_by(due)
        .limit(limit)
    )
    return [
        StuckBooking(
            booking_id=str(booking_id),
            status=BookingStatus.PENDING_PAYMENT.value,
            deadline="payment",
            due_at=due_at,
        )
        for booking_id, due_at in rows
    ]


async def _unreleased(
    session: AsyncSession, auto_complete_delay: timedelta, cutoff: datetime, limit: int
) -> list[StuckBooking]:
    due = _deadline(Booking.release_at, Booking.scheduled_at, auto_complete_delay)
    rows = await session.execute(
        select(Booking.id, Booking.status, due)
        .where(
            Booking.status.in_((BookingStatus.PAID, BookingStatus.PENDING_COMPLETION)),
            Booking.managed,
            due < cutoff,
        )
        .order_by(due)
        .limit(limit)
    )
    return [
        StuckBooking(
            booking_id=str(booking_id), status=str(status), deadline="auto_complete", due_at=due_at
        )
        for booking_id, status, due_at in rows
    ]


async def _cancelling(session: AsyncSession, cutoff: datetime, limit: int) -> list[StuckBooking]:
    expiry = (
        select(SignatureNonce.booking_id, func.max(SignatureNonce.expires_at).label("expires_at"))
        .where(SignatureNonce.kind == NonceKind.CANCELLATION)
        .group_by(SignatureNonce.booking_id)
        .subquery()
    )
    rows = await session.execute(
        select(Booking.id, expiry.c.expires_at)
        .join(expiry, expiry.c.booking_id == Booking.id)
        .where(
            Booking.status == BookingStatus.PENDING_CANCELLATION,
            Booking.managed,
            expiry.c.expires_at < cutoff,
        )
        .order_by(expiry.c.expires_at)
        .limit(limit)
    )
    return [
        StuckBooking(
            booking_id=str(booking_id),
            status=BookingStatus.PENDING_CANCELLATION.value,
            deadline="cancellation_expiry",
            due_at=expires_at,
        )
        for booking_id, expires_at in rows
    ]
