"""ORM models of every table; the schema itself is created by the Alembic migrations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Sequence,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from db import change_notify
from db.base import Base, BaseUnits, MarketplaceId, UtcDateTime, string_enum
from db.statuses import BlockchainEventStatus, BookingStatus, NonceKind, sql_in

ADDRESS = String(42)  # 0x + 40 hex; checksummed by the writer, format checked by the DB
HASH = String(66)  # 0x + 64 hex: tx hashes, block hashes, bytes32 ids
BOOKING_STATUS = string_enum(BookingStatus, 32)
ADDRESS_RE = "^0x[0-9a-fA-F]{40}$"
NONCE_SEQUENCE = "signature_nonce_seq"
# Declared so the metadata describes the whole schema (the migration creates it).
NONCE_SEQ = Sequence(NONCE_SEQUENCE, metadata=Base.metadata, data_type=BigInteger, start=1)


def address_ok(column: str) -> str:
    return f"{column} IS NULL OR {column} ~ '{ADDRESS_RE}'"


def _managed_only(rule: str) -> str:
    """A check for the service's rows only (`workflow_id IS NOT NULL`, see `Booking.managed`):
    the marketplace's app keeps writing rows of its own into an adopted table."""
    return f"workflow_id IS NULL OR ({rule})"


# Timestamps are also sent as now() in the INSERT (not only server defaults) because an adopted
# legacy table may lack defaults on its own timestamp columns.


class Booking(Base):
    """A booking. In an adopted marketplace table, only `managed` rows are the service's.

    Read the table through `Booking.managed` (``select(Booking).where(Booking.managed)``):
    an unmanaged row may hold a status outside `BookingStatus`, which this mapping refuses.
    """

    __tablename__ = "bookings"

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        primary_key=True,
        default=uuid.uuid4,
        server_default=text("gen_random_uuid()"),
    )
    service_id: Mapped[str] = mapped_column(MarketplaceId())
    customer_id: Mapped[str] = mapped_column(MarketplaceId())
    provider_id: Mapped[str] = mapped_column(MarketplaceId())
    # Nullable only because the marketplace's rows have none; ck_bookings_required holds ours.
    customer_wallet: Mapped[str | None] = mapped_column(ADDRESS)
    provider_wallet: Mapped[str | None] = mapped_column(ADDRESS)
    inviter_wallet: Mapped[str | None] = mapped_column(ADDRESS)
    amount_units: Mapped[int | None] = mapped_column(BaseUnits)
    scheduled_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # The booking's own deadlines, from the policy frozen at its start (NULL on older rows).
    payment_deadline_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    release_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    status: Mapped[BookingStatus] = mapped_column(
        BOOKING_STATUS,
        default=BookingStatus.PENDING_PAYMENT,
        server_default=BookingStatus.PENDING_PAYMENT.value,
    )
    status_reason: Mapped[str | None] = mapped_column(Text)
    blockchain_booking_id: Mapped[str | None] = mapped_column(HASH)
    blockchain_tx_hash: Mapped[str | None] = mapped_column(HASH)
    blockchain_confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    completion_tx_hash: Mapped[str | None] = mapped_column(HASH)
    cancellation_tx_hash: Mapped[str | None] = mapped_column(HASH)
    # When the booking reached COMPLETED (cleared if a reorg takes the completion back); the
    # marketplace's own column when its table had one (migration 0005).
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    blockchain_data: Mapped[dict[str, Any] | None] = mapped_column()
    platform_fee_bps: Mapped[int | None] = mapped_column(Integer)
    inviter_fee_bps: Mapped[int | None] = mapped_column(Integer)
    # Set on every row the service records or adopts: what makes a row `managed`.
    workflow_id: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(Text)
    request_hash: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=func.now(), server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=func.now(), server_default=func.now(), onupdate=func.now()
    )

    @hybrid_property
    def managed(self) -> bool:
        """Whether the service owns this row (a workflow does), as opposed to the marketplace."""
        return self.workflow_id is not None

    @managed.inplace.expression
    @classmethod
    def _managed_expression(cls) -> ColumnElement[bool]:
        return cls.workflow_id.is_not(None)

    __table_args__ = (
        CheckConstraint(
            _managed_only(f"status IS NOT NULL AND status IN ({sql_in(BookingStatus)})"),
            name="status",
        ),
        CheckConstraint(_managed_only("amount_units > 0"), name="amount_units_positive"),
        CheckConstraint(
            _managed_only(
                "platform_fee_bps BETWEEN 0 AND 10000 AND inviter_fee_bps BETWEEN 0 AND 10000"
                " AND platform_fee_bps + inviter_fee_bps <= 10000"
            ),
            name="fee_bps_range",
        ),
        CheckConstraint(
            _managed_only("inviter_wallet IS NOT NULL OR inviter_fee_bps = 0"),
            name="inviter_fee_needs_wallet",
        ),
        CheckConstraint(
            _managed_only(address_ok("customer_wallet")), name="customer_wallet_format"
        ),
        CheckConstraint(
            _managed_only(address_ok("provider_wallet")), name="provider_wallet_format"
        ),
        CheckConstraint(_managed_only(address_ok("inviter_wallet")), name="inviter_wallet_format"),
        CheckConstraint(_managed_only("version >= 1"), name="version_positive"),
        CheckConstraint(
            _managed_only(
                "service_id IS NOT NULL AND customer_id IS NOT NULL"
                " AND provider_id IS NOT NULL AND scheduled_at IS NOT NULL"
                " AND customer_wallet IS NOT NULL AND provider_wallet IS NOT NULL"
                " AND amount_units IS NOT NULL AND platform_fee_bps IS NOT NULL"
                " AND inviter_fee_bps IS NOT NULL"
            ),
            name="required",
        ),
        Index(
            "uq_bookings_blockchain_booking_id",
            "blockchain_booking_id",
            unique=True,
            postgresql_where=text("blockchain_booking_id IS NOT NULL"),
        ),
        Index(
            "uq_bookings_idempotency_key",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        Index("ix_bookings_status_scheduled_at", "status", "scheduled_at"),
        # Partial: the marketplace's rows have no wallet and need no entry (keyset pagination).
        Index(
            "ix_bookings_customer_wallet_created_at_id",
            "customer_wallet",
            "created_at",
            "id",
            postgresql_where=text("customer_wallet IS NOT NULL"),
        ),
        # Partial: the marketplace's rows have no wallet and need no entry (keyset pagination).
        Index(
            "ix_bookings_provider_wallet_created_at_id",
            "provider_wallet",
            "created_at",
            "id",
            postgresql_where=text("provider_wallet IS NOT NULL"),
        ),
        Index("ix_bookings_created_at_id", "created_at", "id"),
        Index("ix_bookings_blockchain_tx_hash", "blockchain_tx_hash"),
    )
    # ORM updates check and bump `version` (StaleDataError on a lost race); Core updates
    # should do the same with `WHERE version = :seen`.
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declarative hook


class BookingEvent(Base):
    """Audit row for every state change or deliberate non-change of a booking."""

    __tablename__ = "booking_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    booking_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("bookings.id"))
    from_status: Mapped[BookingStatus | None] = mapped_column(BOOKING_STATUS)
    to_status: Mapped[BookingStatus | None] = mapped_column(BOOKING_STATUS)
    kind: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text, default="system", server_default="system")
    chain_id: Mapped[int | None] = mapped_column(BigInteger)
    tx_hash: Mapped[str | None] = mapped_column(HASH)
    log_index: Mapped[int | None] = mapped_column(Integer)
    # Set by activities (e.g. "paid:<chain>:<tx>:<log>") so a retried activity writes no second row.
    dedupe_key: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(
        default=dict, server_default=text("'{}'::jsonb")
    )
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=func.now(), server_default=func.now()
    )

    __table_args__ = (
        CheckConstraint(
            f"from_status IS NULL OR from_status IN ({sql_in(BookingStatus)})", name="from_status"
        ),
        CheckConstraint(
            f"to_status IS NULL OR to_status IN ({sql_in(BookingStatus)})", name="to_status"
        ),
        CheckConstraint("kind <> ''", name="kind_not_empty"),
        CheckConstraint("log_index IS NULL OR log_index >= 0", name="log_index_non_negative"),
        Index(
            "uq_booking_events_booking_id_dedupe_key",
            "booking_id",
            "dedupe_key",
            unique=True,
            postgresql_where=text("dedupe_key IS NOT NULL"),
        ),
        Index("ix_booking_events_booking_id_id", "booking_id", "id"),
    )


# Every new audit row announces itself (NOTIFY booking_changes; migration 0007).
change_notify.attach(BookingEvent.__table__)


class BlockchainEvent(Base):
    """One escrow log as the listener saw it; `(chain_id, tx_hash, log_index)` is its identity."""

    __tablename__ = "blockchain_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(HASH)
    log_index: Mapped[int] = mapped_column(Integer)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(HASH)
    contract_address: Mapped[str] = mapped_column(ADDRESS)
    event_type: Mapped[str] = mapped_column(String(64))
    chain_booking_id: Mapped[str | None] = mapped_column(HASH)
    booking_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("bookings.id")
    )
    # Decoded event arguments; integers as decimal strings (JSON numbers lose uint256 precision).
    payload: Mapped[dict[str, Any]] = mapped_column(
        default=dict, server_default=text("'{}'::jsonb")
    )
    status: Mapped[BlockchainEventStatus] = mapped_column(
        string_enum(BlockchainEventStatus, 32),
        default=BlockchainEventStatus.RECEIVED,
        server_default=BlockchainEventStatus.RECEIVED.value,
    )
    status_reason: Mapped[str | None] = mapped_column(Text)
    retry_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    received_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=func.now(), server_default=func.now()
    )
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        UniqueConstraint("chain_id", "tx_hash", "log_index"),
        CheckConstraint(f"status IN ({sql_in(BlockchainEventStatus)})", name="status"),
        CheckConstraint("retry_count >= 0", name="retry_count_non_negative"),
        CheckConstraint("log_index >= 0 AND block_number >= 0", name="position_non_negative"),
        Index("ix_blockchain_events_status_received_at", "status", "received_at"),
        Index("ix_blockchain_events_chain_booking_id", "chain_booking_id"),
        Index("ix_blockchain_events_chain_id_block_number", "chain_id", "block_number"),
        Index("ix_blockchain_events_booking_id", "booking_id"),
    )


class SignatureNonce(Base):
    """A nonce reserved for one EIP-712 authorization; see `db.nonces.reserve_nonce`."""

    __tablename__ = "signature_nonces"

    nonce: Mapped[int] = mapped_column(
        BaseUnits, primary_key=True, server_default=text(f"nextval('{NONCE_SEQUENCE}')")
    )
    booking_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("bookings.id"))
    kind: Mapped[NonceKind] = mapped_column(string_enum(NonceKind, 16))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # The signed typed-data message (ints as decimal strings) and its 0x signature.
    authorization: Mapped[dict[str, Any] | None] = mapped_column()
    signature: Mapped[str | None] = mapped_column(Text)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=func.now(), server_default=func.now()
    )

    __table_args__ = (
        CheckConstraint(f"kind IN ({sql_in(NonceKind)})", name="kind"),
        CheckConstraint("nonce >= 0", name="nonce_non_negative"),
        Index("ix_signature_nonces_booking_id_kind", "booking_id", "kind"),
    )


class ChainCursor(Base):
    """The listener's checkpoint per (chain, contract): everything up to it is stored and signalled."""

    __tablename__ = "chain_cursor"

    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract_address: Mapped[str] = mapped_column(ADDRESS)
    last_block_number: Mapped[int] = mapped_column(BigInteger)
    last_block_hash: Mapped[str] = mapped_column(HASH)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=func.now(), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        PrimaryKeyConstraint("chain_id", "contract_address"),
        CheckConstraint("last_block_number >= 0", name="block_non_negative"),
    )


class RecentBlock(Base):
    """Hashes of recently processed blocks, compared against the chain to find a fork point."""

    __tablename__ = "recent_blocks"

    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract_address: Mapped[str] = mapped_column(ADDRESS)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(HASH)

    __table_args__ = (
        PrimaryKeyConstraint("chain_id", "contract_address", "block_number"),
        CheckConstraint("block_number >= 0", name="block_non_negative"),
    )


class RateLimitCounter(Base):
    """Requests counted per key (e.g. "user:<id>") in a fixed window."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(Text)
    window_start: Mapped[datetime] = mapped_column(UtcDateTime())
    count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    __table_args__ = (
        PrimaryKeyConstraint("key", "window_start"),
        CheckConstraint("count >= 0", name="count_non_negative"),
        Index("ix_rate_limit_counters_window_start", "window_start"),
    )
