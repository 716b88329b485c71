"""The bodies of the operator's repair updates: ``resync`` and ``redrive``.

Operators are trusted and never refused by a budget; what they may do is still checked by
``guards`` (a name and a reason, and ``redrive`` only for a FAILED booking).
"""

from __future__ import annotations

from temporalio import workflow

from chain.reason_codes import OnChainReason
from workflows import constants as c
from workflows.audit import AuditAction as A
from workflows.booking.chain_events import Effects
from workflows.booking.guards import MAX_REASON_LENGTH
from workflows.booking.state import BookingState
from workflows.booking.watch import Watch
from workflows.reconcile_types import RESYNC_BOOKING
from workflows.types import (
    BookingInput,
    BookingResync,
    OnChainStatus,
    RedriveRequest,
    RedriveResult,
    ResyncRequest,
    ResyncResult,
)


async def resync(
    booking: BookingInput, state: BookingState, request: ResyncRequest
) -> ResyncResult:
    """Write this workflow's view over a row edited behind its back."""
    state.seq += 1
    applied = list(state.applied.values())
    await workflow.execute_activity(
        RESYNC_BOOKING,
        BookingResync(
            booking_id=booking.booking_id,
            dedupe_key=f"{booking.booking_id}:{state.seq}:resync",
            status=state.status,
            reason=state.reason,
            completion_tx_hash=state.auto_complete.completion_tx,
            refund_tx_hash=state.refund.tx,
            applied_events=applied,
            requested_by=request.operator,
            request_reason=request.reason[:MAX_REASON_LENGTH],
            occurred_at=workflow.now(),
        ),
        start_to_close_timeout=c.DB_ACTIVITY_TIMEOUT,
        retry_policy=c.DB_RETRY,
    )
    return ResyncResult(status=state.status, events_marked=len(applied))


async def redrive(
    state: BookingState, effects: Effects, watch: Watch, request: RedriveRequest
) -> RedriveResult:
    """For a FAILED booking: apply what the chain says, else send the owed refund again."""
    before = set(state.applied)
    observation = await watch.observe(None)
    applied = [key for key in state.applied if key not in before]
    tx_hash: str | None = None
    if applied:
        action = "applied_chain_events"
    elif not state.refund.outstanding:
        action = "nothing_to_do"
    elif state.refund.sent:
        action = "refund_pending"
    elif observation is not None and observation.onchain_status is OnChainStatus.PAID:
        tx_hash = await effects.send_refund(OnChainReason.REFUND_RESENT)
        action = "refund_resent"
    else:
        action = "chain_unreadable" if observation is None else "nothing_to_do"
    await effects.transition(
        state.status,
        A.REDRIVE,
        f"{action} by {request.operator}: {request.reason}"[:MAX_REASON_LENGTH],
        tx_hash=tx_hash,
    )
    effects.bump_timers()
    return RedriveResult(
        status=state.status, action=action, applied_event_keys=applied, tx_hash=tx_hash
    )
