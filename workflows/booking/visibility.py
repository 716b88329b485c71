"""What operators see of a booking in the Temporal UI: search attributes and the details text."""

from typing import Any

from temporalio.common import SearchAttributeUpdate

from workflows import search_attributes as sa
from workflows.booking.state import BookingState
from workflows.summary import booking_summary
from workflows.types import BookingInput, BookingStatus


def search_attributes(
    booking: BookingInput, status: BookingStatus
) -> list[SearchAttributeUpdate[Any]]:
    """Everything a booking is found by, set once it is recorded (the status then on change)."""
    return [
        sa.BOOKING_ID.value_set(booking.booking_id),
        sa.CHAIN_BOOKING_ID.value_set(booking.chain_booking_id),
        sa.CUSTOMER_WALLET.value_set(booking.customer_wallet.lower()),
        sa.PROVIDER_WALLET.value_set(booking.provider_wallet.lower()),
        sa.AMOUNT_UNITS.value_set(booking.amount_units),
        sa.SCHEDULED_AT.value_set(booking.scheduled_at),
        sa.BOOKING_STATUS.value_set(status.value),
    ]


def details(booking: BookingInput, state: BookingState) -> str:
    """The workflow's current details: the summary, the reason, and the finality period."""
    text = booking_summary(booking, state.status)
    if state.reason:
        text += f"\n\nreason: {state.reason}"
    if state.final_at is not None:
        text += f"\n\nsettled; listening for reorgs until {state.final_at.isoformat()}"
    return text
