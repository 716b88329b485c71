"""ORM models of the webhook tables (migration 0003): endpoints, their secrets, the outbox,
one delivery per (event, endpoint) and every attempt of it.

An outbox row is written in the same transaction as the change it announces; its deliveries
(one per active endpoint) in the same transaction too, so nothing committed is ever lost.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, UtcDateTime, string_enum
from db.statuses import sql_in


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # due at next_attempt_at (or waiting behind an earlier event)
    DELIVERED = "delivered"  # the endpoint answered 2xx
    DEAD = "dead"  # the retry horizon passed; `bookme webhooks replay` sends it again


class WebhookEndpoint(Base):
    """A marketplace URL that receives every event written after it was added."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=func.now(), server_default=func.now()
    )
    # Removed endpoints keep their rows (the attempts stay readable); nothing is sent to them.
    removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (CheckConstraint("url ~ '^https?://'", name="url_http"),)


class WebhookSecret(Base):
    """A signing secret, encrypted at rest; a rotated-out one signs too until `expires_at`."""

    __tablename__ = "webhook_secrets"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("webhook_endpoints.id")
    )
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=func.now(), server_default=func.now()
    )
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_webhook_secrets_endpoint_id", "endpoint_id"),)


class WebhookOutbox(Base):
    """One event for the marketplace; `id` orders a booking's events, `event_id` dedupes them."""

    __tablename__ = "webhook_outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    event_type: Mapped[str] = mapped_column(String(64))
    booking_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # What made it (e.g. the transition's dedupe key): a retried writer adds no second row.
    dedupe_key: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=func.now(), server_default=func.now()
    )

    __table_args__ = (
        UniqueConstraint("event_id"),
        UniqueConstraint("dedupe_key"),
        CheckConstraint("event_type <> ''", name="event_type_not_empty"),
        Index("ix_webhook_outbox_booking_id_id", "booking_id", "id"),
        Index("ix_webhook_outbox_created_at", "created_at"),
    )


class WebhookDelivery(Base):
    """One event to one endpoint: pending until delivered, or dead after the retry horizon."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    outbox_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("webhook_outbox.id"))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("webhook_endpoints.id")
    )
    # Copied from the outbox row: a booking's deliveries to one endpoint go one at a time.
    booking_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    status: Mapped[DeliveryStatus] = mapped_column(
        string_enum(DeliveryStatus, 16),
        default=DeliveryStatus.PENDING,
        server_default=DeliveryStatus.PENDING.value,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=func.now(), server_default=func.now()
    )
    # Start of the retry horizon: the first write, or the operator's replay.
    retry_from: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=func.now(), server_default=func.now()
    )
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    dead_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        UniqueConstraint("outbox_id", "endpoint_id"),
        CheckConstraint(f"status IN ({sql_in(DeliveryStatus)})", name="status"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        Index(
            "ix_webhook_deliveries_next_attempt_at",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "ix_webhook_deliveries_endpoint_id_booking_id_outbox_id",
            "endpoint_id",
            "booking_id",
            "outbox_id",
            postgresql_where=text("status = 'pending'"),
        ),
    )


class WebhookAttempt(Base):
    """One POST of a delivery: what the endpoint answered (or why nothing did) and how long."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    delivery_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("webhook_deliveries.id"))
    attempted_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=func.now(), server_default=func.now()
    )
    succeeded: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("duration_ms >= 0", name="duration_non_negative"),
        Index("ix_webhook_attempts_delivery_id", "delivery_id"),
    )
