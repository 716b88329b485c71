"""Input, records and result of the orphan-payment workflow (a payment no booking row knows)."""

from dataclasses import dataclass
from datetime import datetime

from workflows.types.events import ChainEventSignal
from workflows.types.policy import BookingPolicy


@dataclass(frozen=True, kw_only=True)
class OrphanPaymentInput:
    """A payment for a chain booking id the database does not know."""

    event: ChainEventSignal
    policy: BookingPolicy


@dataclass(frozen=True, kw_only=True)
class OrphanRecord:
    chain_booking_id: str
    action: str
    payment: ChainEventSignal
    payment_live: bool = True  # False once a reorg removed it (its row is then REORGED)
    refund: ChainEventSignal | None = None
    refund_tx_hash: str | None = None
    occurred_at: datetime


@dataclass(frozen=True, kw_only=True)
class OrphanResult:
    chain_booking_id: str
    refund_tx_hash: str | None
    refunded: bool
