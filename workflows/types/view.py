"""The booking workflow's ``status`` query."""

from dataclasses import dataclass
from datetime import datetime

from workflows.types.enums import BookingStatus
from workflows.types.updates import CancellationAuthorization, PaymentAuthorization


@dataclass(frozen=True, kw_only=True)
class BookingView:
    """The ``status`` query: everything the API shows about a running booking."""

    booking_id: str
    chain_booking_id: str
    status: BookingStatus
    reason: str | None
    amount_units: int
    customer_wallet: str
    provider_wallet: str
    inviter_wallet: str | None
    scheduled_at: datetime
    release_at: datetime
    payment_deadline: datetime
    payment_authorization: PaymentAuthorization | None
    cancellation_authorization: CancellationAuthorization | None
    refund_tx_hash: str | None
    completion_tx_hash: str | None
    monitoring_until: datetime | None
    monitored_tx_hash: str | None
    applied_event_keys: list[str]
    pending_event_keys: list[str]
    rejected_events: int
    transitions: int
    updated_at: datetime
