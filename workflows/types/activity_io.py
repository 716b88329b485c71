"""Inputs and outputs of the activities the booking and orphan workflows call."""

from dataclasses import dataclass
from datetime import datetime

from workflows.audit import AuditAction
from workflows.types.enums import (
    BookingStatus,
    ChainEventKind,
    EventOutcome,
    OnChainStatus,
    PartyRole,
    TxColumn,
    TxStatus,
)
from workflows.types.events import ChainEventSignal
from workflows.types.updates import CancellationSplit

# --- recording to Postgres -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StoredBooking:
    """``record_booking``'s result: the booking row's timestamps as Postgres wrote them."""

    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, kw_only=True)
class Settlement:
    """Money legs recorded with a terminal transition, taken from the chain event."""

    kind: ChainEventKind
    customer_amount: int = 0
    provider_amount: int = 0
    platform_amount: int = 0
    inviter_amount: int = 0
    emergency: bool = False


@dataclass(frozen=True, kw_only=True)
class RowTransaction:
    """A transaction the booking sent (or, in old histories, was told of) and its row keeps."""

    column: TxColumn
    tx_hash: str

    @classmethod
    def completion(cls, tx_hash: str) -> "RowTransaction":
        return cls(column=TxColumn.COMPLETION, tx_hash=tx_hash)

    @classmethod
    def cancellation(cls, tx_hash: str) -> "RowTransaction":
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
    sent: RowTransaction | None = None
    occurred_at: datetime


@dataclass(frozen=True, kw_only=True)
class BookingResync:
    """Input of the ``resync_booking`` activity: the workflow's view, written over the row."""

    booking_id: str
    dedupe_key: str
    status: BookingStatus
    reason: str | None
    completion_tx_hash: str | None
    refund_tx_hash: str | None
    applied_events: list[ChainEventSignal]
    requested_by: str
    request_reason: str
    occurred_at: datetime


# --- signing ---------------------------------------------------------------------------------


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
    requested_by: PartyRole


# --- the chain: polling and operator transactions --------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ObserveRequest:
    """Ask the chain what happened to a booking (and to one transaction, if known)."""

    booking_id: str
    chain_booking_id: str
    tx_hash: str | None
    confirmations: int
    # Also read the chain's clock (`ChainObservation.final_block_timestamp`): asked only by
    # the checks that decide an authorization can no longer be used.
    chain_time: bool = False


@dataclass(frozen=True, kw_only=True)
class ChainObservation:
    """Confirmed events found by polling, with the same identities the listener would push.

    ``final_block_timestamp``: the timestamp of the newest confirmed block, when asked for
    (``ObserveRequest.chain_time``); None in histories recorded before it existed.
    """

    events: list[ChainEventSignal]
    tx_status: TxStatus
    onchain_status: OnChainStatus
    final_block_timestamp: int | None = None


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
