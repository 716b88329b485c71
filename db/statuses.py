"""The closed vocabularies stored in Postgres (statuses, kinds), shared by models and migrations."""

from __future__ import annotations

from enum import StrEnum


class BookingStatus(StrEnum):
    """A booking's state; the set the `bookings.status` check constraint allows."""

    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    PENDING_COMPLETION = "PENDING_COMPLETION"
    COMPLETED = "COMPLETED"
    PENDING_CANCELLATION = "PENDING_CANCELLATION"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


class BlockchainEventStatus(StrEnum):
    """Processing state of one stored chain log."""

    RECEIVED = "RECEIVED"
    PROCESSED = "PROCESSED"
    REORGED = "REORGED"
    FAILED = "FAILED"


class NonceKind(StrEnum):
    """Which EIP-712 authorization a reserved nonce was issued for."""

    BOOKING = "booking"
    CANCELLATION = "cancellation"


class BookingEventKind(StrEnum):
    """Known audit kinds; the column is free text so a new kind needs no migration."""

    CREATED = "created"
    AUTHORIZATION_ISSUED = "authorization_issued"
    TRANSACTION_REPORTED = "transaction_reported"
    PAID = "paid"
    COMPLETION_SUBMITTED = "completion_submitted"
    COMPLETED = "completed"
    CANCELLATION_REQUESTED = "cancellation_requested"
    CANCELLATION_EXPIRED = "cancellation_expired"
    CANCELLED = "cancelled"
    EMERGENCY_CANCEL = "emergency_cancel"
    FAILED = "failed"
    EVENT_IGNORED = "event_ignored"
    REVERTED = "reverted"


# Reason written to `bookings.status_reason` when the first migration met a legacy row whose
# status is not one of ours; the original value is kept in `bookings.legacy_status`.
LEGACY_STATUS_UNMAPPED = "legacy_status_unmapped"


def sql_in(values: type[StrEnum]) -> str:
    """`'A', 'B', ...` for a CHECK ... IN (...) clause (values are our own literals)."""
    return ", ".join(f"'{member.value}'" for member in values)
