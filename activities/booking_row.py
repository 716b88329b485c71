"""The columns this service manages on a booking row, and adoption of the marketplace's own row.

The marketplace's app may insert a booking into its `bookings` table itself (parties, amount,
time, PENDING_PAYMENT; no wallets, no workflow). When the customer asks to pay, the API starts
the booking's workflow with that row's id, and `record_booking` fills in the managed columns of
that same row instead of inserting another: one row per booking, whoever wrote it first.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Booking
from db.statuses import BookingStatus as DbStatus
from workflows import constants as c
from workflows.errors import ActivityRejected
from workflows.types import BookingInput


def managed_columns(booking: BookingInput, platform_bps: int, inviter_bps: int) -> dict[str, Any]:
    """What the service writes on a booking row it records, from the workflow's input."""
    payment_deadline = timedelta(seconds=booking.policy.payment_deadline_seconds)
    auto_complete_delay = timedelta(seconds=booking.policy.auto_complete_delay_seconds)
    return {
        "customer_wallet": booking.customer_wallet,
        "provider_wallet": booking.provider_wallet,
        "inviter_wallet": booking.inviter_wallet,
        "amount_units": booking.amount_units,
        # The workflow's own deadlines, from the policy frozen in its input: the stuck
        # detector reads them, whatever the settings say by then.
        "payment_deadline_at": func.now() + payment_deadline,
        "release_at": booking.scheduled_at + auto_complete_delay,
        "blockchain_booking_id": booking.chain_booking_id.lower(),
        "platform_fee_bps": platform_bps,
        "inviter_fee_bps": inviter_bps,
        "workflow_id": c.booking_workflow_id(booking.booking_id),
        "updated_at": func.now(),
    }


async def adopt_marketplace_row(
    session: AsyncSession,
    booking_id: uuid.UUID,
    booking: BookingInput,
    columns: dict[str, Any],
) -> bool:
    """Fill in `columns` on the marketplace's row for this booking, if it is one still to adopt.

    Only a row no workflow manages yet, still PENDING_PAYMENT, for the same service and parties
    and (where it has one) the same amount and chain id; anything else is left as it is for
    the caller's same-booking check to judge. True when the row was adopted now.
    """
    result = await session.execute(
        update(Booking)
        .where(
            Booking.id == booking_id,
            Booking.workflow_id.is_(None),
            Booking.status == DbStatus.PENDING_PAYMENT,
            Booking.service_id == booking.service_id,
            Booking.customer_id == booking.customer_id,
            Booking.provider_id == booking.provider_id,
            or_(Booking.amount_units.is_(None), Booking.amount_units == booking.amount_units),
            or_(
                Booking.blockchain_booking_id.is_(None),
                func.lower(Booking.blockchain_booking_id) == booking.chain_booking_id.lower(),
            ),
        )
        .values(**columns)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def booking_uuid(booking_id: str) -> uuid.UUID:
    """A booking id from an activity's input; a malformed one is rejected for good."""
    try:
        return uuid.UUID(booking_id)
    except ValueError:
        raise ActivityRejected(f"booking id {booking_id!r} is not a UUID") from None
