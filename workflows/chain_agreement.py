"""Which chain state agrees with which booking status: one definition for every reader.

``bookme show``, reconciliation and the chaos checks all ask the same two questions, and
used to answer them with three tables that disagreed (``show`` flagged every booking
cancelled before payment as divergent: its chain state is NONE, which is right).
"""

from __future__ import annotations

from workflows.types import BookingStatus, OnChainStatus

S = BookingStatus
C = OnChainStatus

# What the chain shows while the booking is consistent with it. FAILED sits beside any chain
# state: before payment, with a refund still owed, or after the money moved.
_AGREES: dict[BookingStatus, frozenset[OnChainStatus]] = {
    S.PENDING_PAYMENT: frozenset({C.NONE}),
    S.PAID: frozenset({C.PAID}),
    S.PENDING_COMPLETION: frozenset({C.PAID}),
    S.PENDING_CANCELLATION: frozenset({C.PAID}),
    S.COMPLETED: frozenset({C.COMPLETED}),
    # Cancelled before payment (deadline, or the customer's request): nothing on chain.
    S.CANCELLED: frozenset({C.NONE, C.CANCELLED}),
    S.FAILED: frozenset(OnChainStatus),
}


def agrees_with_chain(status: BookingStatus, onchain: OnChainStatus) -> bool:
    """The booking's status is consistent with the chain's state of the same booking."""
    return onchain in _AGREES[status]


def settled_with_chain(status: BookingStatus, onchain: OnChainStatus) -> bool:
    """A final status whose money has finished moving: nothing is left in escrow for it.

    Stricter than ``agrees_with_chain`` for FAILED: a FAILED booking whose money is still
    escrowed (a refund owed) agrees with the chain but is not settled.
    """
    if not status.is_terminal or not agrees_with_chain(status, onchain):
        return False
    return onchain is not C.PAID


def statuses_agreeing_with(onchain: OnChainStatus) -> frozenset[BookingStatus]:
    """Every booking status consistent with this chain state."""
    return frozenset(s for s in BookingStatus if agrees_with_chain(s, onchain))
