"""The booking workflow's ``status`` query."""

from dataclasses import dataclass
from datetime import datetime

from workflows.types.activity_io import StoredBooking
from workflows.types.enums import BookingStatus
from workflows.types.policy import BookingInput
from workflows.types.sightings import PaymentSeen
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
    # A payment seen in a block not yet confirmed (PENDING_PAYMENT only); None otherwise.
    payment_seen: PaymentSeen | None = None


@dataclass(frozen=True, kw_only=True)
class RecordedBooking:
    """The ``recorded`` update (creation's update-with-start): the booking once its row is written.

    ``booking`` is the input the workflow runs with (the first start's, whoever sent the update);
    ``stored`` is None when Postgres refused the booking for good, and the view is then FAILED
    with the reason.
    """

    booking: BookingInput
    view: BookingView
    stored: StoredBooking | None
