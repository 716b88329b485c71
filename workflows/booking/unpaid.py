"""Cancelling a booking nobody has paid: at once, or once its last payment authorization expires."""

from temporalio import workflow

from workflows import constants as c
from workflows.audit import AuditAction as A
from workflows.booking import guards, versions
from workflows.booking.chain_events import Effects
from workflows.booking.state import BookingState
from workflows.booking.watch import Watch
from workflows.types import BookingStatus, CancellationResult, PartyRole


async def cancel(
    state: BookingState, effects: Effects, watch: Watch, role: PartyRole, reason: str
) -> CancellationResult:
    """The unpaid cancellation a party asked for (a repeat answers with the first one's time)."""
    if state.payment.unpaid_cancel_reason is not None:
        guards.spend(state, role, changed=False)
        return CancellationResult(status=state.status, cancels_at=state.payment_deadline)
    guards.spend(state, role, changed=True)
    live = guards.live_payment_auth_until(state, workflow.now())
    if live is not None and versions.applies(c.PATCH_TRUST_BOUNDARY):
        # Cancelling now would leave a valid authorization behind: a payment made with it
        # lands on a closed booking and costs an operator refund. Close once it can no
        # longer be used; no new authorization meanwhile.
        state.payment.unpaid_cancel_reason = reason
        state.payment_deadline = min(state.payment_deadline, live)
        await effects.transition(BookingStatus.PENDING_PAYMENT, A.CANCELLATION_REQUESTED, reason)
        effects.bump_timers()
        return CancellationResult(status=state.status, cancels_at=state.payment_deadline)
    await effects.transition(BookingStatus.CANCELLED, A.CANCELLED_UNPAID, reason=reason)
    watch.arm_close_check()
    return CancellationResult(status=state.status)
