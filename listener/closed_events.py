"""What the listener writes for an event whose workflow had already closed, and the reasons."""

from __future__ import annotations

from sqlalchemy import text

from db.held_tx import held_tx_sql

# An event re-delivered after its workflow closed (a reorg re-included it after the finality
# period, or a crash re-sent it): nobody will apply it, so record what it is. When the booking
# already holds this transaction for this kind, the event is its re-inclusion; an orphan (no
# booking) or another transaction is FAILED with the reason. (A payment or cancellation the
# booking does not hold first goes to the orphan refund: `delivery.goes_to_orphan_refund`.)
_BOOKING_HOLDS_TX = f"""
    coalesce((
        SELECT lower(coalesce({held_tx_sql("event_type", "b")}, '')) = lower(:tx)
        FROM bookings b WHERE b.id = CAST(:booking AS uuid)
    ), false)
"""  # noqa: S608 - built from our own column names
HOLDS_TX = text(f"SELECT {_BOOKING_HOLDS_TX}")
CLOSE_OUT = text(
    f"WITH found AS (SELECT {_BOOKING_HOLDS_TX} AS same)"  # noqa: S608 - a constant fragment
    """
    UPDATE blockchain_events e SET
        status = CASE WHEN found.same THEN 'PROCESSED' ELSE 'FAILED' END,
        status_reason = CASE
            WHEN found.same THEN :same_reason
            WHEN CAST(:booking AS uuid) IS NULL THEN :orphan_reason
            ELSE :other_reason END,
        processed_at = now()
    FROM found
    WHERE e.chain_id = :chain_id AND e.tx_hash = :tx AND e.log_index = :li
      AND e.status = 'RECEIVED'
    RETURNING e.status
    """
)
SAME_TX_REASON = "delivered after its booking workflow closed; the booking already holds this tx"
OTHER_TX_REASON = "delivered after its booking workflow closed; reconcile checks the booking"
REVERT_UNHEARD_REASON = "reorged after its booking workflow closed; reconcile checks the booking"
ORPHAN_CLOSED_REASON = "its orphan refund workflow had closed; reconcile reports the payment"
