"""Inputs, outputs and signal payloads shared by the API, the listener, the worker and the workflows.

Serialization: Temporal's default JSON converter is enough for everything here. It writes
``datetime`` as ISO 8601 with its offset and reads it back from the type hint, and handles
nested frozen dataclasses, ``X | None`` and ``StrEnum``. Every ``datetime`` in these types is
timezone-aware UTC; there are no bare ``date``/``time`` fields (the only ones that would need
``temporalio.contrib.pydantic``). Clients and workers use ``workflows.DATA_CONVERTER``
(the default converter, named so a later switch happens in one place).

Money is always integer USDC base units (6 decimals). Wallets are 0x-hex strings and compared
case-insensitively; on-chain times (``release_time``, ``expiry``) are uint256 epoch seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from workflows.audit import AuditAction

if TYPE_CHECKING:
    from bookme.settings import Settings

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


class BookingStatus(StrEnum):
    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    PENDING_COMPLETION = "PENDING_COMPLETION"
    COMPLETED = "COMPLETED"
    PENDING_CANCELLATION = "PENDING_CANCELLATION"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"

    @property
    def is_terminal(self) -> bool:
        """No further status change is expected (a reorg may still reopen it)."""
        return self in TERMINAL_STATUSES

    @property
    def holds_money(self) -> bool:
        """The escrow holds this booking's money and nothing has released it yet."""
        return self in MONEY_HELD_STATUSES


TERMINAL_STATUSES = frozenset(
    {BookingStatus.COMPLETED, BookingStatus.CANCELLED, BookingStatus.FAILED}
)
MONEY_HELD_STATUSES = frozenset(
    {BookingStatus.PAID, BookingStatus.PENDING_COMPLETION, BookingStatus.PENDING_CANCELLATION}
)


class ChainEventKind(StrEnum):
    """The three escrow events a booking reacts to (values are the Solidity event names)."""

    PAYMENT = "BookingCreatedAndPaid"
    COMPLETION = "ServiceCompleted"
    CANCELLATION = "BookingCancelled"


class TransactionKind(StrEnum):
    """What a transaction reported by the frontend (or sent by the operator) is meant to do."""

    PAYMENT = "payment"
    COMPLETION = "completion"
    CANCELLATION = "cancellation"
    REFUND = "refund"


class CancellationRole(StrEnum):
    CUSTOMER = "customer"
    PROVIDER = "provider"
    OPERATOR = "operator"


class TxStatus(StrEnum):
    UNKNOWN = "unknown"
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    REVERTED = "reverted"


class EventOutcome(StrEnum):
    """What applying an event did; ``blockchain_events.status`` is set to it."""

    PROCESSED = "PROCESSED"
    REORGED = "REORGED"
    FAILED = "FAILED"


class OnChainStatus(StrEnum):
    """The contract's ``BookingStatus`` enum (uint8 0..3)."""

    NONE = "None"
    PAID = "Paid"
    COMPLETED = "Completed"
    CANCELLED = "Cancelled"


# --- policy and workflow input -------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BookingPolicy:
    """Every knob one booking runs under, frozen into its input so its history shows them."""

    chain_id: int = 31337
    confirmations: int = 2
    monitoring_window_seconds: int = 180
    push_grace_seconds: int = 30
    poll_interval_seconds: int = 10
    payment_deadline_seconds: int = 1800
    authorization_ttl_seconds: int = 300
    auto_complete_delay_seconds: int = 7200
    late_cancellation_window_seconds: int = 86400
    late_cancellation_provider_bps: int = 5000
    platform_fee_bps: int = 1000
    platform_fee_with_inviter_bps: int = 500
    inviter_fee_bps: int = 500
    # Old histories carry no such field: the default keeps them decoding.
    settlement_finality_seconds: int = 900

    def __post_init__(self) -> None:
        # A zero interval would spin the workflow's timer loop; refuse it at the client.
        for name in (
            "monitoring_window_seconds",
            "poll_interval_seconds",
            "payment_deadline_seconds",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in (
            "confirmations",
            "push_grace_seconds",
            "authorization_ttl_seconds",
            "auto_complete_delay_seconds",
            "late_cancellation_window_seconds",
            "settlement_finality_seconds",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name in (
            "late_cancellation_provider_bps",
            "platform_fee_bps",
            "platform_fee_with_inviter_bps",
            "inviter_fee_bps",
        ):
            if not 0 <= getattr(self, name) <= 10_000:
                raise ValueError(f"{name} must be within 0..10000 bps")

    @classmethod
    def from_settings(cls, settings: Settings) -> BookingPolicy:
        return cls(
            chain_id=settings.chain_id,
            confirmations=settings.confirmations,
            monitoring_window_seconds=settings.monitoring_window_seconds,
            push_grace_seconds=settings.push_grace_seconds,
            poll_interval_seconds=settings.poll_interval_seconds,
            payment_deadline_seconds=settings.payment_deadline_seconds,
            authorization_ttl_seconds=settings.authorization_ttl_seconds,
            auto_complete_delay_seconds=settings.auto_complete_delay_seconds,
            late_cancellation_window_seconds=settings.late_cancellation_window_seconds,
            late_cancellation_provider_bps=settings.late_cancellation_provider_bps,
            platform_fee_bps=settings.platform_fee_bps,
            platform_fee_with_inviter_bps=settings.platform_fee_with_inviter_bps,
            inviter_fee_bps=settings.inviter_fee_bps,
            settlement_finality_seconds=settings.settlement_finality_seconds,
        )

    def fee_rates(self, *, has_inviter: bool) -> tuple[int, int]:
        """(platformFeeRate, inviterFeeRate) in bps, as the contract's fee policy expects them."""
        if has_inviter:
            return self.platform_fee_with_inviter_bps, self.inviter_fee_bps
        return self.platform_fee_bps, 0


@dataclass(frozen=True, kw_only=True)
class BookingInput:
    """Start input of ``BookingWorkflow``; the API builds it when a booking is created."""

    booking_id: str
    chain_booking_id: str
    customer_wallet: str
    provider_wallet: str
    inviter_wallet: str | None = None
    amount_units: int
    scheduled_at: datetime
    service_id: str
    customer_id: str
    provider_id: str
    policy: BookingPolicy = field(default_factory=BookingPolicy)

    @property
    def inviter_or_zero(self) -> str:
        return self.inviter_wallet or ZERO_ADDRESS


# --- chain events (signals from the listener, results of polling) ---------------------------


@dataclass(frozen=True, kw_only=True)
class EventIdentity:
    """Where an event sits on chain; ``(chain_id, tx_hash, log_index)`` is the dedupe key."""

    chain_id: int
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str

    @property
    def key(self) -> str:
        return f"{self.chain_id}:{self.tx_hash.lower()}:{self.log_index}"


@dataclass(frozen=True, kw_only=True)
class PaymentFields:
    """``BookingCreatedAndPaid`` fields."""

    customer: str
    provider: str
    inviter: str
    amount: int
    platform_fee_rate: int
    inviter_fee_rate: int


@dataclass(frozen=True, kw_only=True)
class CompletionFields:
    """``ServiceCompleted`` fields."""

    provider: str
    provider_amount: int
    platform_fee: int
    inviter_fee: int


@dataclass(frozen=True, kw_only=True)
class CancellationFields:
    """``BookingCancelled`` fields."""

    cancelled_by: str
    customer_amount: int
    provider_amount: int
    platform_amount: int
    inviter_amount: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class ChainEventSignal:
    """One decoded escrow event plus its identity: the payload of every chain signal.

    Exactly the field group matching ``kind`` is set. ``chain_event_reverted`` carries the
    same payload as the signal it revokes.
    """

    kind: ChainEventKind
    identity: EventIdentity
    chain_booking_id: str
    payment: PaymentFields | None = None
    completion: CompletionFields | None = None
    cancellation: CancellationFields | None = None

    def __post_init__(self) -> None:
        present = {
            ChainEventKind.PAYMENT: self.payment is not None,
            ChainEventKind.COMPLETION: self.completion is not None,
            ChainEventKind.CANCELLATION: self.cancellation is not None,
        }
        if not present[self.kind] or sum(present.values()) != 1:
            raise ValueError(f"a {self.kind} event must carry exactly its own fields")

    @property
    def key(self) -> str:
        return self.identity.key


# --- updates -------------------------------------------------------------------------------


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
    role: CancellationRole | None = None  # None: an unidentified caller, refused
    wallet: str = ""


@dataclass(frozen=True, kw_only=True)
class TransactionReport:
    tx_hash: str
    kind: TransactionKind
    monitoring_until: datetime


@dataclass(frozen=True, kw_only=True)
class CancellationRequest:
    role: CancellationRole
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
    requested_by: CancellationRole


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


# --- query ---------------------------------------------------------------------------------


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


# --- activity inputs and outputs -----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Settlement:
    """Money legs recorded with a terminal transition, taken from the chain event."""

    kind: ChainEventKind
    customer_amount: int = 0
    provider_amount: int = 0
    platform_amount: int = 0
    inviter_amount: int = 0
    emergency: bool = False


class TxColumn(StrEnum):
    """Which of the booking row's transaction columns a sent transaction belongs in."""

    COMPLETION = "completion"
    CANCELLATION = "cancellation"


@dataclass(frozen=True, kw_only=True)
class SentTransaction:
    """A transaction the booking sent (or, in old histories, was told of) and its row keeps."""

    column: TxColumn
    tx_hash: str

    @classmethod
    def completion(cls, tx_hash: str) -> SentTransaction:
        return cls(column=TxColumn.COMPLETION, tx_hash=tx_hash)

    @classmethod
    def cancellation(cls, tx_hash: str) -> SentTransaction:
        return cls(column=TxColumn.CANCELLATION, tx_hash=tx_hash)


@dataclass(frozen=True, kw_only=True)
class TransitionRecord:
    """One audited change: booking row + ``booking_events`` row (+ event mark, settlement).

    The store writes what the record says: ``sent`` names the row column for a transaction the
    workflow sent; a chain ``event`` fills its own columns. It never interprets ``action``.
    """

    booking_id: str
    dedupe_key: str
    from_status: BookingStatus
    to_status: BookingStatus
    action: AuditAction
    reason: str | None = None
    event: ChainEventSignal | None = None
    event_outcome: EventOutcome | None = None
    settlement: Settlement | None = None
    tx_hash: str | None = None  # the audit row's transaction
    sent: SentTransaction | None = None
    occurred_at: datetime


@dataclass(frozen=True, kw_only=True)
class SignPaymentRequest:
    booking_id: str
    idempotency_key: str
    chain_booking_id: str
    customer: str
    provider: str
    inviter: str
    amount: int
    platform_fee_rate: int
    inviter_fee_rate: int
    release_time: int
    expiry: int


@dataclass(frozen=True, kw_only=True)
class SignCancellationRequest:
    booking_id: str
    idempotency_key: str
    chain_booking_id: str
    split: CancellationSplit
    reason: str
    expiry: int
    requested_by: CancellationRole


@dataclass(frozen=True, kw_only=True)
class ObserveRequest:
    """Ask the chain what happened to a booking (and to one transaction, if known)."""

    booking_id: str
    chain_booking_id: str
    tx_hash: str | None
    confirmations: int


@dataclass(frozen=True, kw_only=True)
class ChainObservation:
    """Confirmed events found by polling, with the same identities the listener would push."""

    events: list[ChainEventSignal]
    tx_status: TxStatus
    onchain_status: OnChainStatus


@dataclass(frozen=True, kw_only=True)
class OperatorTxRequest:
    booking_id: str
    chain_booking_id: str
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class OperatorTxResult:
    """``tx_hash`` is None when the booking was already final on chain and nothing was sent;
    ``already_final_as`` then says how it ended (``Completed`` or ``Cancelled``)."""

    tx_hash: str | None
    already_final_as: str | None = None


@dataclass(frozen=True, kw_only=True)
class OrphanPaymentInput:
    """A payment for a chain booking id the database does not know."""

    event: ChainEventSignal
    policy: BookingPolicy = field(default_factory=BookingPolicy)


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
