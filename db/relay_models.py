"""ORM model of relayed payments (migration 0008): one row per booking the platform paid gas for.

Its own table rather than columns on ``bookings`` (part of which is the marketplace's table) or
on ``tx_ledger`` (one key's transactions of every kind, none of them tied to a booking, a row
dropped when its nonce is reclaimed): the gas a relay cost belongs to its booking and is summed
per booking and per day. The primary key is the booking: one relay per booking, also here.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, BaseUnits, UtcDateTime
from db.models import ADDRESS, ADDRESS_RE, HASH


class RelayedPayment(Base):
    """The operator's transaction that paid one booking with its customer's transfer signature."""

    __tablename__ = "relayed_payments"

    booking_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("bookings.id"), primary_key=True
    )
    chain_id: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(HASH)
    relayer: Mapped[str] = mapped_column(ADDRESS)
    gas_used: Mapped[int] = mapped_column(BigInteger)
    effective_gas_price_wei: Mapped[int] = mapped_column(BaseUnits)
    gas_cost_wei: Mapped[int] = mapped_column(BaseUnits)
    block_number: Mapped[int] = mapped_column(BigInteger)
    relayed_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=func.now(), server_default=func.now()
    )

    __table_args__ = (
        CheckConstraint(f"relayer ~ '{ADDRESS_RE}'", name="relayer_address"),
        CheckConstraint("gas_used > 0", name="gas_used_positive"),
        CheckConstraint(
            "gas_cost_wei = gas_used * effective_gas_price_wei", name="gas_cost_is_used_times_price"
        ),
    )
