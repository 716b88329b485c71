"""The booking workflow: a thin Temporal shell over pure state, guards, timers and event rules.

- ``workflow``: the ``@workflow.defn`` class (run loop, handlers, persistence, visibility);
- ``state``: what one booking remembers, grouped by concern, and its query view;
- ``guards``: who may make which update in which state (pure functions);
- ``timers``: what is due when, and monitoring windows (pure functions);
- ``chain_events``: applying chain events, reorgs and escalations against the shell's effects;
- ``watch``: deadlines, monitoring windows and polls, and the operator's own transactions;
- ``authorizations``: signing payment and cancellation authorizations;
- ``repairs``: the bodies of the operator's ``resync`` and ``redrive`` updates;
- ``unpaid``: cancelling a booking before payment (at once, or once the chain proves it unpaid);
- ``recording``: the one Postgres write every change goes through, the booking's row written
  first, and the ``recorded`` update's answer (creation's update-with-start);
- ``visibility``: the search attributes and details operators see in the Temporal UI;
- ``sightings``: a payment seen before its confirmations (``payment_seen``), shown, never applied.

Transitions (action names are what ``booking_events`` records):

    PENDING_PAYMENT      --payment_confirmed-------------------> PAID
    PENDING_PAYMENT      --payment_timeout (deadline)----------> CANCELLED
    PENDING_PAYMENT      --cancelled_unpaid (request; when a payment authorization is still
                           valid, or the chain shows a payment not yet confirmed, once the
                           deadline's check finds none: cancellation_requested is recorded
                           first; a confirmed payment found then pays the booking)--> CANCELLED
    PAID                 --auto_complete_sent (the operator's own transaction)--> PENDING_COMPLETION
    PENDING_COMPLETION   --auto_complete_sent (a reported completion never landed)--> same
    PAID|PENDING_*       --service_completed-------------------> COMPLETED   (+ earnings, fees)
    PAID|PENDING_CANC.   --cancellation_authorized-------------> PENDING_CANCELLATION
    PAID|PENDING_COMPL.  --emergency_cancel_sent---------------> PENDING_CANCELLATION
    PENDING_CANCELLATION --cancellation_expired----------------> PAID
    PENDING_CANCELLATION --refund_reverted (emergency tx reverted)--> PAID
    PENDING_COMPLETION   --completion_reverted (tx reverted)---> PAID
    PAID|PENDING_*       --booking_cancelled-------------------> CANCELLED   (+ refund legs)
    PAID|PENDING_*       --payment_reorged (reorg)-------------> PENDING_PAYMENT
    COMPLETED|CANCELLED  --settlement_reorged (reorg)----------> PAID (or PENDING_CANCELLATION
                           and the refund re-sent, when it was an emergency refund)
    FAILED (settled)     --settlement_reorged (reorg)----------> FAILED, refund owed and re-sent
    PENDING_PAYMENT      --contradiction (payment fields differ)--> FAILED + emergency refund
    PAID|PENDING_*       --contradiction (settlement differs)--> FAILED (legs recorded as mined)
    CANCELLED (unpaid)   --contradiction (payment after close)--> FAILED + emergency refund
    FAILED (refund owed) --refund_recorded / completed_while_failed--> FAILED (settled, ends)

A booking settled by a chain event stays open for ``settlement_finality_seconds`` (policy)
so a reorg that removes the settlement still reaches it; after that the listener records the
revert on the event row and reconciliation compares the booking with the chain.

Audit-only records (status unchanged): event_rejected, event_reverted, transaction_reverted,
auto_complete_failed, refund_failed, emergency_cancel_sent (when already FAILED),
cancellation_requested, payment_seen, payment_seen_cleared, sighting_ignored.

Who may do what: a reported transaction never changes the status (only the chain does), and
only the party who can send it may report it. Budgets are per party (customer, provider), so
no party can spend another's; operator updates are never refused by a budget. Histories
recorded before these rules replay through ``workflow.patched("trust-boundary")``.

The history bound (why no continue-as-new is needed) is worked out in
``docs/booking-workflow.md``. Behaviour changes go through ``workflow.patched`` and the replay
test over ``tests/workflows/histories``.
"""

from temporalio import workflow

# The pure modules are deterministic: the sandbox passes them through (re-importing them per
# run would also re-create the types their dataclasses convert to).
with workflow.unsafe.imports_passed_through():
    from workflows.booking.guards import MAX_REASON_LENGTH
from workflows.booking.workflow import BookingWorkflow

__all__ = ["MAX_REASON_LENGTH", "BookingWorkflow"]
