"""Identity: wallets proven with Sign-In with Ethereum, their single-use nonces, service API keys.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

New tables only (nothing of the marketplace's own schema is touched): `wallet_links` (one owner
per wallet, with the signed message as evidence), `siwe_nonces` (deleted when used; expired ones
are swept whenever a nonce is issued) and `api_keys` (the SHA-256 of each secret, never the
secret).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "wallet_links",
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.CheckConstraint("address ~ '^0x[0-9a-fA-F]{40}$'", name=op.f("ck_wallet_links_address")),
        sa.PrimaryKeyConstraint("address", name="pk_wallet_links"),
    )
    op.create_index("ix_wallet_links_user_id", "wallet_links", ["user_id"])
    op.create_table(
        "siwe_nonces",
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.PrimaryKeyConstraint("nonce", name="pk_siwe_nonces"),
    )
    op.create_index("ix_siwe_nonces_user_id", "siwe_nonces", ["user_id"])
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(12), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("key_id ~ '^[0-9a-f]{12}$'", name=op.f("ck_api_keys_key_id")),
        sa.CheckConstraint(
            "secret_sha256 ~ '^[0-9a-f]{64}$'", name=op.f("ck_api_keys_secret_sha256")
        ),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_keys"),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_index("ix_siwe_nonces_user_id", table_name="siwe_nonces")
    op.drop_table("siwe_nonces")
    op.drop_index("ix_wallet_links_user_id", table_name="wallet_links")
    op.drop_table("wallet_links")
