"""A payment seen on chain before it is confirmed: the ``payment_seen`` signal and its view.

A sighting is news for the customer, never money: the booking stays PENDING_PAYMENT and
only the confirmed ``payment_confirmed`` event moves it to PAID.
"""

from dataclasses import dataclass
from datetime import datetime

from workflows.types.events import ChainEventSignal


@dataclass(frozen=True, kw_only=True)
class PaymentSighting:
    """The ``payment_seen`` signal: a ``BookingCreatedAndPaid`` log in a block not yet final.

    ``confirmations`` counts blocks on top of the log's block when the listener saw it (0: the
    head itself). ``removed``: that block left the chain before the confirmation depth, so
    what was shown is withdrawn.
    """

    event: ChainEventSignal
    confirmations: int
    removed: bool = False


@dataclass(frozen=True, kw_only=True)
class PaymentSeen:
    """In the ``status`` view while PENDING_PAYMENT: the payment seen, not yet confirmed."""

    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    confirmations: int
    required: int
    seen_at: datetime


def seen_summary(confirmations: int, required: int) -> str:
    """The words the API, the stream and the audit trail show for a sighting."""
    return f"payment seen, {confirmations} of {required} confirmations"
