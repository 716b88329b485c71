"""The booking's Postgres writes: the one way every change is written, the first write (its row),
and the answer its creator awaits.

The API creates a booking with update-with-start of the ``recorded`` update: one call starts the
workflow (or joins the running one) and returns once the row is written, or once Postgres has
refused it for good (the booking then ends FAILED with the reason; nothing was signed or held).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows import constants as c
from workflows.booking import short_activities
from workflows.booking.guards import MAX_REASON_LENGTH
from workflows.booking.state import BookingState
from workflows.types import (
    BookingInput,
    BookingStatus,
    RecordedBooking,
    StoredBooking,
    TransitionRecord,
)


async def write(
    activity: str, arg: BookingInput | TransitionRecord, result: type | None = None
) -> StoredBooking | None:
    """One idempotent Postgres write (it dedupes on its key, so a re-run after a crash changes
    nothing), run as a local activity (``short_activities``).

    ``result``: the type of what the activity answers (None still decodes as None: histories
    from before ``record_booking`` answered hold None there).
    """
    answer: StoredBooking | None = await short_activities.execute(
        activity,
        arg,
        patch=c.PATCH_LOCAL_DB_WRITES,
        result_type=result,
        start_to_close=c.DB_ACTIVITY_TIMEOUT,
        retry=c.DB_RETRY,
    )
    return answer


def unrecordable(state: BookingState, err: ActivityError | ApplicationError) -> None:
    """Postgres refused the booking for good (poison input): it ends FAILED, with the reason.

    Nothing was signed or held, so nothing is owed; the outcome lives in the workflow's
    result, status search attribute and summary, since there is no row to write it to.
    """
    cause = err.cause if isinstance(err, ActivityError) and err.cause else err
    state.status = BookingStatus.FAILED
    state.reason = f"the booking could not be stored: {cause}"[:MAX_REASON_LENGTH]
    workflow.logger.error("booking refused by Postgres", extra={"reason": state.reason})


def answer(
    booking: BookingInput, state: BookingState, stored: StoredBooking | None
) -> RecordedBooking:
    """What the ``recorded`` update returns once ``state.recorded`` is set."""
    return RecordedBooking(booking=booking, view=state.to_view(booking), stored=stored)
