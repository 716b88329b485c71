"""Which booking statuses agree with the chain's final state, and what a disagreement means."""

from __future__ import annotations

from chain.escrow import OnChainBookingStatus
from db.statuses import BookingStatus as DbStatus
from workflows.reconcile_types import DivergenceKind
from workflows.types import BookingStatus

TERMINAL = (DbStatus.COMPLETED, DbStatus.CANCELLED, DbStatus.FAILED)
MONEY_HELD = frozenset({BookingStatus.PAID, BookingStatus.PENDING_COMPLETION,
                        BookingStatus.PENDING_CANCELLATION})  # fmt: skip
# The chain's final state -> the workflow statuses that agree with it.
AGREES = {
    OnChainBookingStatus.NONE: frozenset(
        {BookingStatus.PENDING_PAYMENT, BookingStatus.CANCELLED, BookingStatus.FAILED}
    ),
    OnChainBookingStatus.PAID: MONEY_HELD | {BookingStatus.FAILED},
    OnChainBookingStatus.COMPLETED: frozenset({BookingStatus.COMPLETED, BookingStatus.FAILED}),
    OnChainBookingStatus.CANCELLED: frozenset({BookingStatus.CANCELLED, BookingStatus.FAILED}),
}
# A chain state the workflow has not reached: the event it must have missed.
MISSING_KIND = {
    OnChainBookingStatus.PAID: DivergenceKind.MISSING_PAYMENT,
    OnChainBookingStatus.COMPLETED: DivergenceKind.MISSING_COMPLETION,
    OnChainBookingStatus.CANCELLED: DivergenceKind.MISSING_CANCELLATION,
}
