"""ORM models of the transaction ledger (migration 0006): each sending key's next nonce and
every transaction it signed, written before broadcast (why: ``chain/ledger.py``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Identity, Index, LargeBinary, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, BaseUnits, UtcDateTime

# chain.ledger.TxOutcome's values (db does not import chain; a test keeps the two equal).
TX_OUTCOMES = ("succeeded", "reverted", "dropped")
_ADDRESS = "^0x[0-9a-fA-F]{40}$"
# At most one transaction per intent that is in flight or has succeeded.
NOT_DROPPED = "outcome IS DISTINCT FROM 'dropped'"
LIVE_INTENT = "intent IS NOT NULL AND (outcome IS NULL OR outcome = 'succeeded')"


class TxNonce(Base):
    """The next nonce of one key on one chain; its row lock serialises allocation."""

    __tablename__ = "tx_nonces"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    sender: Mapped[str] = mapped_column(String(42), primary_key=True)
    next_nonce: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=func.now(), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        CheckConstraint(f"sender ~ '{_ADDRESS}'", name="sender_address"),
        CheckConstraint("next_nonce >= 0", name="next_nonce_non_negative"),
    )


class LedgerTransaction(Base):
    """One signed transaction (all its same-nonce versions), recorded before any broadcast."""

    __tablename__ = "tx_ledger"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    sender: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[int] = mapped_column(BigInteger)
    intent: Mapped[str | None] = mapped_column(String(200))
    to_address: Mapped[str | None] = mapped_column(String(42))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    value: Mapped[int] = mapped_column(BaseUnits())
    gas: Mapped[int] = mapped_column(BigInteger)
    max_fee_per_gas: Mapped[int] = mapped_column(BaseUnits())
    max_priority_fee_per_gas: Mapped[int] = mapped_column(BaseUnits())
    # Every version's hash, oldest first; the signed bytes are the newest version's.
    tx_hashes: Mapped[list[str]] = mapped_column(JSONB)
    raw_tx: Mapped[bytes] = mapped_column(LargeBinary)
    outcome: Mapped[str | None] = mapped_column(String(16))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=func.now(), server_default=func.now()
    )
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint(f"sender ~ '{_ADDRESS}'", name="sender_address"),
        CheckConstraint("nonce >= 0", name="nonce_non_negative"),
        CheckConstraint(
            "outcome IS NULL OR outcome IN ({})".format(", ".join(f"'{o}'" for o in TX_OUTCOMES)),
            name="outcome",
        ),
        # A nonce the chain lost (a restarted dev chain) is reclaimed: its old row is dropped.
        Index(
            "uq_tx_ledger_chain_id_sender_nonce",
            "chain_id",
            "sender",
            "nonce",
            unique=True,
            postgresql_where=text(NOT_DROPPED),
        ),
        Index(
            "uq_tx_ledger_live_intent",
            "chain_id",
            "sender",
            "intent",
            unique=True,
            postgresql_where=text(LIVE_INTENT),
        ),
        Index(
            "ix_tx_ledger_unsettled",
            "chain_id",
            "sender",
            "nonce",
            postgresql_where=text("outcome IS NULL"),
        ),
    )
