"""Transaction ledger: each sending key's next nonce, and every signed transaction before broadcast.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

New tables only. `tx_nonces` has one row per (chain id, sender address), locked FOR UPDATE while
a nonce is taken; `tx_ledger` one row per nonce a sender signed, with every same-nonce version's
hash and the newest signed bytes, so any worker replica can re-broadcast or wait on a
transaction another one recorded (see chain/ledger.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("now()")
_ADDRESS = "^0x[0-9a-fA-F]{40}$"
_UNITS = sa.Numeric(78, 0)


def upgrade() -> None:
    op.create_table(
        "tx_nonces",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("sender", sa.String(42), nullable=False),
        sa.Column("next_nonce", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.CheckConstraint(f"sender ~ '{_ADDRESS}'", name="sender_address"),
        sa.CheckConstraint("next_nonce >= 0", name="next_nonce_non_negative"),
        sa.PrimaryKeyConstraint("chain_id", "sender", name="pk_tx_nonces"),
    )
    op.create_table(
        "tx_ledger",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("sender", sa.String(42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("intent", sa.String(200)),
        sa.Column("to_address", sa.String(42)),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("value", _UNITS, nullable=False),
        sa.Column("gas", sa.BigInteger(), nullable=False),
        sa.Column("max_fee_per_gas", _UNITS, nullable=False),
        sa.Column("max_priority_fee_per_gas", _UNITS, nullable=False),
        sa.Column("tx_hashes", JSONB(), nullable=False),
        sa.Column("raw_tx", sa.LargeBinary(), nullable=False),
        sa.Column("outcome", sa.String(16)),
        sa.Column("block_number", sa.BigInteger()),
        sa.Column("block_hash", sa.String(66)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("settled_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(f"sender ~ '{_ADDRESS}'", name="sender_address"),
        sa.CheckConstraint("nonce >= 0", name="nonce_non_negative"),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('succeeded', 'reverted', 'dropped')",
            name="outcome",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tx_ledger"),
    )
    # A nonce the chain lost (a restarted dev chain) is reclaimed: its old row is dropped.
    op.create_index(
        "uq_tx_ledger_chain_id_sender_nonce",
        "tx_ledger",
        ["chain_id", "sender", "nonce"],
        unique=True,
        postgresql_where=sa.text("outcome IS DISTINCT FROM 'dropped'"),
    )
    op.create_index(
        "uq_tx_ledger_live_intent",
        "tx_ledger",
        ["chain_id", "sender", "intent"],
        unique=True,
        postgresql_where=sa.text(
            "intent IS NOT NULL AND (outcome IS NULL OR outcome = 'succeeded')"
        ),
    )
    op.create_index(
        "ix_tx_ledger_unsettled",
        "tx_ledger",
        ["chain_id", "sender", "nonce"],
        postgresql_where=sa.text("outcome IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tx_ledger_unsettled", table_name="tx_ledger")
    op.drop_index("uq_tx_ledger_live_intent", table_name="tx_ledger")
    op.drop_index("uq_tx_ledger_chain_id_sender_nonce", table_name="tx_ledger")
    op.drop_table("tx_ledger")
    op.drop_table("tx_nonces")
