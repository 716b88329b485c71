"""Which open bookings have a deadline behind them, and which are waiting for one ahead.

A client flow cut short by a fault leaves its booking where the customer left it: paid for an
appointment an hour away, say. That booking is not stuck: its workflow holds a timer for the
release and auto-completes it then. So the checks and the wait for quiescence call an open
booking due only once its deadline (the payment deadline while unpaid, else the release) plus
the time the workflow needs to act on it has passed; a waiting one must have a running workflow.
"""

from __future__ import annotations

from datetime import datetime, timedelta

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
