"""The closed vocabularies stored in Postgres (statuses, kinds), shared by models and migrations."""

from __future__ import annotations

from enum import StrEnum

# A booking's state, and the set the `bookings.status` check constraint allows: the domain's
# one enum (its status sets live there too), not a copy.
from workflows.types import BookingStatus


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


def sql_in(values: type[StrEnum]) -> str:
    """`'A', 'B', ...` for a CHECK ... IN (...) clause (values are our own literals)."""
    return ", ".join(f"'{member.value}'" for member in values)


__all__ = [
    "BlockchainEventStatus",
    "BookingStatus",
    "NonceKind",
    "sql_in",
]
