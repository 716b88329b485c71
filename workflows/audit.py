"""What a ``booking_events`` audit row records: one vocabulary for the workflow, the store and
the operator CLI. (The reconciler's own findings use ``DivergenceKind``.)

The column stays free text, so adding an action needs no migration; the names are what the
runbook, ``bookme show`` and operators' queries see, so renaming one is a breaking change.
"""

from __future__ import annotations

from enum import StrEnum


class AuditAction(StrEnum):
    # --- the row itself
    CREATED = "created"
    RESYNC = "resync"  # the reconciler or an operator rewrote the row from the workflow's view
    # --- payment
    PAYMENT_CONFIRMED = "payment_confirmed"
    PAYMENT_TIMEOUT = "payment_timeout"
    PAYMENT_REORGED = "payment_reorged"
    # A payment seen before its confirmations (status unchanged), and its withdrawal.
    PAYMENT_SEEN = "payment_seen"
    PAYMENT_SEEN_CLEARED = "payment_seen_cleared"
    SIGHTING_IGNORED = "sighting_ignored"  # a sighting that contradicts the booking's terms
    CANCELLATION_REQUESTED = "cancellation_requested"  # unpaid, waiting for the auth to expire
    CANCELLED_UNPAID = "cancelled_unpaid"
    # --- completion
    COMPLETION_REPORTED = "completion_reported"  # only in histories from before the trust patch
    AUTO_COMPLETE_SENT = "auto_complete_sent"
    AUTO_COMPLETE_FAILED = "auto_complete_failed"
    COMPLETION_REVERTED = "completion_reverted"
    SERVICE_COMPLETED = "service_completed"
    # --- cancellation and refunds
    CANCELLATION_AUTHORIZED = "cancellation_authorized"
    CANCELLATION_EXPIRED = "cancellation_expired"
    BOOKING_CANCELLED = "booking_cancelled"
    EMERGENCY_CANCEL_SENT = "emergency_cancel_sent"
    REFUND_REVERTED = "refund_reverted"
    REFUND_FAILED = "refund_failed"
    REFUND_RECORDED = "refund_recorded"
    OPERATOR_REFUND = "operator_refund"  # sent by the CLI around a workflow that could not
    # --- reorgs, contradictions, audit-only records
    SETTLEMENT_REORGED = "settlement_reorged"
    CONTRADICTION = "contradiction"
    COMPLETED_WHILE_FAILED = "completed_while_failed"
    EVENT_REJECTED = "event_rejected"
    EVENT_REVERTED = "event_reverted"
    TRANSACTION_REVERTED = "transaction_reverted"
    REDRIVE = "redrive"
