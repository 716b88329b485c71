"""Cancelling a booking nobody has paid: at once, or once the chain proves it cannot be paid.

The workflow's own PENDING_PAYMENT may be behind the chain: a workflow task that applied the
payment was lost with its worker (its Postgres write survives, its history does not), or the
listener's push is still on its way. So a cancellation of a booking that was ever offered a
payment authorization reads the chain first (``PATCH_UNPAID_CANCEL_READS_CHAIN``):

- a confirmed payment there is applied, and the caller judges the request as a paid
  cancellation (``cancel`` answers None);
- a payment mined and not yet confirmed, or a read that failed, defers the cancellation like a
  live authorization does: it closes when the deadline's own check finds the chain empty, and
  a payment confirmed meanwhile wins;
- an empty chain closes the booking at once (a live authorization still defers it).
"""

from temporalio import workflow

from workflows import constants as c
from workflows.audit import AuditAction as A
from workflows.booking import guards, versions
from workflows.booking.chain_events import Effects
from workflows.booking.state import BookingState
from workflows.booking.watch import Watch
from workflows.types import BookingStatus, CancellationResult, OnChainStatus, PartyRole


async def cancel(
    state: BookingState,
    effects: Effects,
    watch: Watch,
    role: PartyRole,
    reason: str,
) -> CancellationResult | None:
    """The unpaid cancellation a party asked for (a repeat answers with the first one's time);
    None when the chain showed the booking paid."""
    if state.payment.unpaid_cancel_reason is not None:
        guards.spend(state, role, changed=False)
        return CancellationResult(status=state.status, cancels_at=state.payment_deadline)
    unsure = False
    if state.payment.current is not None and workflow.patched(c.PATCH_UNPAID_CANCEL_READS_CHAIN):
        observation = await watch.observe(None)
        if state.status is not BookingStatus.PENDING_PAYMENT:
            return None
        # The listener's sighting is not consulted: a block still on the chain shows here as
        # PAID, and one gone from it says nothing about a payment.
        unsure = observation is None or observation.onchain_status is not OnChainStatus.NONE
    guards.spend(state, role, changed=True)
    now = workflow.now()
    live = guards.live_payment_auth_until(state, now)
    if (live is not None and versions.applies(c.PATCH_TRUST_BOUNDARY)) or unsure:
        # Cancelling now would leave a usable authorization (or a payment on its way) behind:
        # a payment landing on a closed booking costs an operator refund. Close once the
        # deadline's check finds the chain empty; no new authorization meanwhile.
        state.payment.unpaid_cancel_reason = reason
        state.payment_deadline = min(state.payment_deadline, live or now)
        await effects.transition(BookingStatus.PENDING_PAYMENT, A.CANCELLATION_REQUESTED, reason)
        effects.bump_timers()
        return CancellationResult(status=state.status, cancels_at=state.payment_deadline)
    await effects.transition(BookingStatus.CANCELLED, A.CANCELLED_UNPAID, reason=reason)
    watch.arm_close_check()
    return CancellationResult(status=state.status)
