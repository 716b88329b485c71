"""ORM models of identity: wallets proven with Sign-In with Ethereum, their nonces, API keys.

Created by migration 0004. Kept apart from `db/models.py` (the booking's tables): these belong to
callers, not to bookings.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, UtcDateTime

ADDRESS_RE = "^0x[0-9a-fA-F]{40}$"
KEY_ID_RE = "^[0-9a-f]{12}$"
SHA256_HEX_RE = "^[0-9a-f]{64}$"


class WalletLink(Base):
    """A wallet a user proved they hold by signing an EIP-4361 message; one owner per wallet."""

    __tablename__ = "wallet_links"

    # Checksummed by the writer; unique, so a wallet belongs to exactly one user.
    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    user_id: Mapped[str] = mapped_column(Text)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    # The signed message and its signature: the evidence, kept for disputes.
    message: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(Text)
    linked_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=func.now(), server_default=func.now()
    )

    __table_args__ = (
        CheckConstraint(f"address ~ '{ADDRESS_RE}'", name="address"),
        Index("ix_wallet_links_user_id", "user_id"),
    )


class SiweNonce(Base):
    """A nonce issued to one user for one Sign-In with Ethereum message; deleted when used."""

    __tablename__ = "siwe_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=func.now(), server_default=func.now()
    )

    __table_args__ = (Index("ix_siwe_nonces_user_id", "user_id"),)


class ApiKey(Base):
    """A server-to-server key: only the SHA-256 of its secret is stored; `key_id` finds it."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    # Who the key acts as: keys rotated for one marketplace share it (idempotency keys are
    # scoped to the caller, so a retry across a rotation finds the same booking).
    subject: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=func.now(), server_default=func.now()
    )
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint(f"key_id ~ '{KEY_ID_RE}'", name="key_id"),
        CheckConstraint(f"secret_sha256 ~ '{SHA256_HEX_RE}'", name="secret_sha256"),
    )


__all__ = ["ApiKey", "SiweNonce", "WalletLink"]
