"""Statuses and kinds: the vocabularies the booking's types, its rows and the API share."""

from enum import StrEnum


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


class PartyRole(StrEnum):
    """Who acts on a booking: who asks to cancel, who reports a transaction, whose budget pays."""

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


class TxColumn(StrEnum):
    """Which of the booking row's transaction columns a sent transaction belongs in."""

    COMPLETION = "completion"
    CANCELLATION = "cancellation"
