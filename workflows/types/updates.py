"""Requests and results of the booking workflow's updates: the parties' and the operators'."""

from dataclasses import dataclass
from datetime import datetime

from workflows.types.enums import BookingStatus, PartyRole, TransactionKind


@dataclass(frozen=True, kw_only=True)
class AuthorizePaymentRequest:
    caller_wallet: str


@dataclass(frozen=True, kw_only=True)
class PaymentAuthorization:
    """A signed ``BookingAuthorization`` the customer submits to ``createAndPayBooking``."""

    chain_booking_id: str
    customer: str
    provider: str
    inviter: str
    amount: int
    platform_fee_rate: int
    inviter_fee_rate: int
    release_time: int
    expiry: int
    nonce: int
    signature: str
    contract: str
    chain_id: int
    expires_at: datetime


@dataclass(frozen=True, kw_only=True)
class ReportTransactionRequest:
    """``role``/``wallet`` say who reports: only the party who can send that transaction may."""

    tx_hash: str
    kind: TransactionKind
    role: PartyRole | None = None  # None: an unidentified caller, refused
    wallet: str = ""


@dataclass(frozen=True, kw_only=True)
class TransactionReport:
    tx_hash: str
    kind: TransactionKind
    monitoring_until: datetime


@dataclass(frozen=True, kw_only=True)
class CancellationRequest:
    role: PartyRole
    wallet: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class CancellationSplit:
    """How a cancelled booking's escrow is paid out; the legs sum to the booking amount."""

    customer_amount: int
    provider_amount: int
    platform_amount: int
    inviter_amount: int

    @property
    def total(self) -> int:
        return (
            self.customer_amount + self.provider_amount + self.platform_amount + self.inviter_amount
        )


@dataclass(frozen=True, kw_only=True)
class CancellationAuthorization:
    """A signed ``CancellationAuthorization`` for ``cancelBooking``."""

    chain_booking_id: str
    split: CancellationSplit
    reason: str
    expiry: int
    nonce: int
    signature: str
    contract: str
    chain_id: int
    expires_at: datetime
    requested_by: PartyRole


@dataclass(frozen=True, kw_only=True)
class CancellationResult:
    """``authorization`` is None when an unpaid booking was cancelled without chain action."""

    status: BookingStatus
    authorization: CancellationAuthorization | None = None
    # An unpaid booking whose payment authorization is still valid is cancelled when that
    # authorization expires (so it can no longer be paid), not at once.
    cancels_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class EmergencyCancelRequest:
    operator: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class EmergencyCancelResult:
    """``tx_hash`` is None when the chain had already settled the booking."""

    status: BookingStatus
    tx_hash: str | None


# --- operator repairs (resync, redrive); the reconciler calls resync too ----------------------


@dataclass(frozen=True, kw_only=True)
class ResyncRequest:
    """Re-write the workflow's own view to Postgres (after a row was edited behind its back)."""

    operator: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ResyncResult:
    status: BookingStatus
    events_marked: int


@dataclass(frozen=True, kw_only=True)
class RedriveRequest:
    """Operator: re-read the chain for a FAILED booking and apply it / retry the failed step."""

    operator: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class RedriveResult:
    status: BookingStatus
    action: str  # "applied_chain_events", "refund_resent", "refund_pending", "nothing_to_do"
    applied_event_keys: list[str]
    tx_hash: str | None = None
