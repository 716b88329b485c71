"""Relayed payments: the gas the platform paid for each booking paid with one signature.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

A new table only (issue #19). One row per booking (the primary key), written when the operator's
relay transaction is mined: its hash, the relayer, gas used, effective gas price and their
product in wei. Why a table of its own and not a column: db/relay_models.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("now()")
_ADDRESS = "^0x[0-9a-fA-F]{40}$"
_UNITS = sa.Numeric(78, 0)


def upgrade() -> None:
    op.create_table(
        "relayed_payments",
        sa.Column("booking_id", UUID(as_uuid=True), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("relayer", sa.String(42), nullable=False),
        sa.Column("gas_used", sa.BigInteger(), nullable=False),
        sa.Column("effective_gas_price_wei", _UNITS, nullable=False),
        sa.Column("gas_cost_wei", _UNITS, nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("relayed_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.CheckConstraint(f"relayer ~ '{_ADDRESS}'", name="relayer_address"),
        sa.CheckConstraint("gas_used > 0", name="gas_used_positive"),
        sa.CheckConstraint(
            "gas_cost_wei = gas_used * effective_gas_price_wei", name="gas_cost_is_used_times_price"
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["bookings.id"], name="fk_relayed_payments_booking_id_bookings"
        ),
        sa.PrimaryKeyConstraint("booking_id", name="pk_relayed_payments"),
    )


def downgrade() -> None:
    op.drop_table("relayed_payments")
