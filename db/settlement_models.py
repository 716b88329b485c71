"""ORM models of the money tables: one row per chain event that moved a booking's escrow.

Platform and inviter fees and the provider's earning of a completion, the legs of a
cancellation. Each row is keyed by its event's identity and marked, not deleted, when a reorg
orphans the event.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, BaseUnits, UtcDateTime
from db.models import ADDRESS, HASH, address_ok


class _SettlementLeg:
    """Columns shared by the money tables written from one chain event each."""

    chain_id: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(HASH)
    log_index: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=func.now(), server_default=func.now()
    )
    # Set when a reorg orphaned the event; a re-included event then records a new live row.
    reverted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class PlatformFee(_SettlementLeg, Base):
    """Platform and inviter fee of one completed booking."""

    __tablename__ = "platform_fees"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    booking_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("bookings.id"))
    platform_amount_units: Mapped[int] = mapped_column(BaseUnits)
    inviter_amount_units: Mapped[int] = mapped_column(
        BaseUnits, default=0, server_default=text("0")
    )
    inviter_wallet: Mapped[str | None] = mapped_column(ADDRESS)

    __table_args__ = (
        UniqueConstraint("chain_id", "tx_hash", "log_index"),
        CheckConstraint(
            "platform_amount_units >= 0 AND inviter_amount_units >= 0", name="amounts_non_negative"
        ),
        CheckConstraint(address_ok("inviter_wallet"), name="inviter_wallet_format"),
        Index(
            "uq_platform_fees_booking_id_live",
            "booking_id",
            unique=True,
            postgresql_where=text("reverted_at IS NULL"),
        ),
    )


class ProviderEarning(_SettlementLeg, Base):
    """What the provider received for one completed booking."""

    __tablename__ = "provider_earnings"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    booking_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("bookings.id"))
    provider_wallet: Mapped[str] = mapped_column(ADDRESS)
    amount_units: Mapped[int] = mapped_column(BaseUnits)
    # When this earning was added to the marketplace's users.total_earnings (cleared when a
    # reorg took it out again); see db.marketplace_counters.
    marketplace_counted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        UniqueConstraint("chain_id", "tx_hash", "log_index"),
        CheckConstraint("amount_units >= 0", name="amount_units_non_negative"),
        CheckConstraint(address_ok("provider_wallet"), name="provider_wallet_format"),
        Index(
            "uq_provider_earnings_booking_id_live",
            "booking_id",
            unique=True,
            postgresql_where=text("reverted_at IS NULL"),
        ),
        Index("ix_provider_earnings_provider_wallet", "provider_wallet"),
        Index("ix_provider_earnings_booking_id", "booking_id"),
    )


class Refund(_SettlementLeg, Base):
    """The legs of one cancellation (customer refund, provider/platform/inviter shares)."""

    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    booking_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("bookings.id"))
    customer_amount_units: Mapped[int] = mapped_column(BaseUnits)
    provider_amount_units: Mapped[int] = mapped_column(
        BaseUnits, default=0, server_default=text("0")
    )
    platform_amount_units: Mapped[int] = mapped_column(
        BaseUnits, default=0, server_default=text("0")
    )
    inviter_amount_units: Mapped[int] = mapped_column(
        BaseUnits, default=0, server_default=text("0")
    )
    # True for the operator's full-refund path (emergencyCancelBooking).
    emergency: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    __table_args__ = (
        UniqueConstraint("chain_id", "tx_hash", "log_index"),
        CheckConstraint(
            "customer_amount_units >= 0 AND provider_amount_units >= 0"
            " AND platform_amount_units >= 0 AND inviter_amount_units >= 0",
            name="amounts_non_negative",
        ),
        Index(
            "uq_refunds_booking_id_live",
            "booking_id",
            unique=True,
            postgresql_where=text("reverted_at IS NULL"),
        ),
    )
