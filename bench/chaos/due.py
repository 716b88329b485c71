"""Which open bookings have work under way, and which only wait for a deadline ahead.

A client flow cut short by a fault leaves its booking where the customer left it: paid for an
appointment an hour away, say. That booking is not stuck: its workflow holds a timer for the
release and auto-completes it then. So for a booking whose flow was cut short, the checks and
the wait for quiescence count it as busy only once its deadline (the payment deadline while
unpaid, else the release) plus the time the workflow needs to act on it has passed, and a
waiting one must have a running workflow. Any other open booking is busy: its flow finished,
so what it did (a completion, a cancellation) is still on its way.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bench.chaos.workload import BookingRecord
from workflows.types import BookingStatus

# A timer firing, the final read of the chain, confirmations and an operator send.
GRACE = timedelta(minutes=2)


def deadline(
    status: str, payment_deadline_at: datetime | None, release_at: datetime | None
) -> datetime | None:
    """The deadline an open booking waits for: its payment deadline while unpaid, else the
    release (after which it is auto-completed)."""
    if status == BookingStatus.PENDING_PAYMENT.value:
        return payment_deadline_at
    return release_at


def due(
    status: str,
    payment_deadline_at: datetime | None,
    release_at: datetime | None,
    now: datetime,
) -> bool:
    """Whether an open booking should have moved on by `now` (no known deadline: it should)."""
    at = deadline(status, payment_deadline_at, release_at)
    return at is None or now >= at + GRACE


def waiting(
    cut_short: bool,
    status: str,
    payment_deadline_at: datetime | None,
    release_at: datetime | None,
    now: datetime,
) -> bool:
    """Whether an open booking only waits for its deadline: its flow was cut short (nobody else
    will act on it before then) and the deadline is still ahead."""
    return cut_short and not due(status, payment_deadline_at, release_at, now)


def cut_short(records: list[BookingRecord]) -> set[str]:
    """The booking ids whose client flow ended with an error."""
    return {str(r.booking_id) for r in records if r.error is not None and r.booking_id}
