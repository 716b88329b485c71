"""The reconciler's view of agreement: booking vs chain, and what a disagreement means.

Which chain state agrees with which status is `workflows.chain_agreement`'s rule (one definition
for `bookme show`, the reconciler and the chaos checks); this adds what the reconciler needs.
"""

from __future__ import annotations

from activities.chain import ONCHAIN_STATUS
from chain.escrow import OnChainBookingStatus
from workflows.chain_agreement import agrees_with_chain
from workflows.reconcile_types import DivergenceKind
from workflows.types import TERMINAL_STATUSES, BookingStatus

# Sorted: the same SQL for every run.
TERMINAL = tuple(sorted(TERMINAL_STATUSES))
# A chain state the workflow has not reached: the event it must have missed.
MISSING_KIND = {
    OnChainBookingStatus.PAID: DivergenceKind.MISSING_PAYMENT,
    OnChainBookingStatus.COMPLETED: DivergenceKind.MISSING_COMPLETION,
    OnChainBookingStatus.CANCELLED: DivergenceKind.MISSING_CANCELLATION,
}


def agrees(status: BookingStatus, onchain: OnChainBookingStatus) -> bool:
    """The workflow's status is consistent with the escrow's state of the booking."""
    return agrees_with_chain(status, ONCHAIN_STATUS[onchain])
