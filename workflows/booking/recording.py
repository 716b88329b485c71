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
    nothing). Run as a local activity: no server round trip to schedule and dispatch it, which
    is most of an event's latency and half its history.

    ``result``: the type of what the activity answers (None still decodes as None: histories
    from before ``record_booking`` answered hold None there).
    """
    run = (
        workflow.execute_local_activity
        if workflow.patched(c.PATCH_LOCAL_DB_WRITES)
        else workflow.execute_activity
    )
    answer: StoredBooking | None = await run(
        activity,
        arg,
        start_to_close_timeout=c.DB_ACTIVITY_TIMEOUT,
        retry_policy=c.DB_RETRY,
        result_type=result,
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
