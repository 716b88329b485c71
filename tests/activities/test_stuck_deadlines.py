"""The stuck detector holds each booking to its own deadlines, not to today's settings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities import BookingStore
from activities.reconcile.stuck import find_stuck
from db.models import Booking
from db.statuses import BookingStatus
from tests.workflows.fakes import make_booking
from workflows.types import BookingInput

pytestmark = pytest.mark.integration

# Recorded under a 30 min payment deadline and a 2 h auto-complete delay...
PAYMENT_DEADLINE_SECONDS = 1800
AUTO_COMPLETE_DELAY_SECONDS = 7200
# ...after which an operator shortens both.
SHORTENED_PAYMENT_DEADLINE = timedelta(minutes=1)
SHORTENED_AUTO_COMPLETE_DELAY = timedelta(0)


def _booking(scheduled_in: timedelta = timedelta(days=3)) -> BookingInput:
    return make_booking(
        scheduled_in=scheduled_in,
        payment_deadline_seconds=PAYMENT_DEADLINE_SECONDS,
        auto_complete_delay_seconds=AUTO_COMPLETE_DELAY_SECONDS,
    )


async def _stuck(sessions: async_sessionmaker[AsyncSession], now: datetime) -> set[str]:
    async with sessions() as session:
        found = await find_stuck(
            session,
            payment_deadline=SHORTENED_PAYMENT_DEADLINE,
            auto_complete_delay=SHORTENED_AUTO_COMPLETE_DELAY,
            grace=timedelta(0),
            now=now,
        )
    return {s.booking_id for s in found}


async def test_a_shortened_payment_deadline_does_not_make_a_recorded_booking_stuck(
    store: BookingStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    booking = _booking()
    await ActivityEnvironment().run(store.record_booking, booking)
    now = datetime.now(UTC)

    assert booking.booking_id not in await _stuck(sessions, now + timedelta(minutes=10))
    assert booking.booking_id in await _stuck(sessions, now + timedelta(minutes=31))


async def test_a_shortened_auto_complete_delay_does_not_make_a_paid_booking_stuck(
    store: BookingStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    booking = _booking(scheduled_in=timedelta(hours=1))
    await ActivityEnvironment().run(store.record_booking, booking)
    async with sessions.begin() as session:
        await session.execute(
            update(Booking)
            .where(Booking.id == uuid.UUID(booking.booking_id))
            .values(status=BookingStatus.PAID)
        )
    release = booking.scheduled_at + timedelta(hours=2)

    assert booking.booking_id not in await _stuck(sessions, release - timedelta(minutes=1))
    assert booking.booking_id in await _stuck(sessions, release + timedelta(minutes=1))


async def test_rows_without_deadlines_fall_back_to_the_settings(
    store: BookingStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Bookings recorded before the deadline columns existed keep the old computation."""
    booking = _booking()
    await ActivityEnvironment().run(store.record_booking, booking)
    async with sessions.begin() as session:
        await session.execute(
            text(
                "UPDATE bookings SET payment_deadline_at = NULL, release_at = NULL WHERE id = :id"
            ),
            {"id": uuid.UUID(booking.booking_id)},
        )
    now = datetime.now(UTC)

    assert booking.booking_id in await _stuck(sessions, now + timedelta(minutes=2))


async def test_the_marketplaces_own_rows_are_never_stuck(
    store: BookingStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # Rows its app wrote long ago, in statuses of ours: no workflow owns them, nothing to chase.
    async with sessions.begin() as session:
        for status in ("PENDING_PAYMENT", "PAID", "PENDING_COMPLETION", "NO_SHOW"):
            await session.execute(
                text(
                    "INSERT INTO bookings (service_id, customer_id, provider_id, scheduled_at,"
                    " status, created_at) VALUES ('svc', 'c', 'p', now() - interval '30 days',"
                    " :status, now() - interval '30 days')"
                ),
                {"status": status},
            )
    ours = _booking(scheduled_in=timedelta(hours=-5))
    await ActivityEnvironment().run(store.record_booking, ours)

    assert await _stuck(sessions, datetime.now(UTC) + timedelta(days=1)) == {ours.booking_id}
