"""Stuck-booking detector: past a deadline (payment, auto-complete, cancellation expiry), not final."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

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
    """Bookings whose deadline plus ``grace`` has passed while they are still non-terminal."""
    now = now or datetime.now(UTC)
    stuck: list[StuckBooking] = []
    unpaid = await session.execute(
        select(Booking.id, Booking.created_at)
        .where(
            Booking.status == BookingStatus.PENDING_PAYMENT,
            Booking.is_legacy.is_(False),
            Booking.created_at < now - payment_deadline - grace,
        )
        .order_by(Booking.created_at)
        .limit(limit)
    )
    stuck += [
        StuckBooking(
            booking_id=str(booking_id),
            status=BookingStatus.PENDING_PAYMENT.value,
            deadline="payment",
            due_at=created_at + payment_deadline,
        )
        for booking_id, created_at in unpaid
    ]
    held = await session.execute(
        select(Booking.id, Booking.status, Booking.scheduled_at)
        .where(
            Booking.status.in_((BookingStatus.PAID, BookingStatus.PENDING_COMPLETION)),
            Booking.scheduled_at < now - auto_complete_delay - grace,
        )
        .order_by(Booking.scheduled_at)
        .limit(limit)
    )
    stuck += [
        StuckBooking(
            booking_id=str(booking_id),
            status=str(status),
            deadline="auto_complete",
            due_at=scheduled_at + auto_complete_delay,
        )
        for booking_id, status, scheduled_at in held
    ]
    expiry = (
        select(SignatureNonce.booking_id, func.max(SignatureNonce.expires_at).label("expires_at"))
        .where(SignatureNonce.kind == NonceKind.CANCELLATION)
        .group_by(SignatureNonce.booking_id)
        .subquery()
    )
    cancelling = await session.execute(
        select(Booking.id, expiry.c.expires_at)
        .join(expiry, expiry.c.booking_id == Booking.id)
        .where(
            Booking.status == BookingStatus.PENDING_CANCELLATION,
            expiry.c.expires_at < now - grace,
        )
        .order_by(expiry.c.expires_at)
        .limit(limit)
    )
    stuck += [
        StuckBooking(
            booking_id=str(booking_id),
            status=BookingStatus.PENDING_CANCELLATION.value,
            deadline="cancellation_expiry",
            due_at=expires_at,
        )
        for booking_id, expires_at in cancelling
    ]
    return stuck
