"""The marketplace's own bookkeeping: `bookings.completed_at` and its users' earnings counters.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

- `bookings.completed_at` (nullable) is added unless the marketplace's table has it already
  (the seed's app sets it on completion). On an adopted table the addition is recorded in
  `bookme_schema_adoption.added_columns`, so downgrade drops only a column it added.
- `provider_earnings.marketplace_counted_at` marks an earning already added to the
  marketplace's `users.total_earnings` / `completed_services` (db.marketplace_counters), so
  an earning recorded twice moves the counters once; plus an index on its booking id.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADOPTED = "SELECT added_columns FROM bookme_schema_adoption WHERE table_name = 'bookings'"


def upgrade() -> None:
    bind = op.get_bind()
    exists = bind.execute(
        sa.text(
            "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = CAST('public.bookings' AS"
            " regclass) AND attname = 'completed_at' AND NOT attisdropped)"
        )
    ).scalar()
    if not exists:
        op.execute("ALTER TABLE bookings ADD COLUMN completed_at timestamptz")
        op.execute(
            "UPDATE bookme_schema_adoption SET added_columns = added_columns || '{completed_at}'"
            " WHERE table_name = 'bookings'"
        )
    op.add_column(
        "provider_earnings", sa.Column("marketplace_counted_at", sa.DateTime(timezone=True))
    )
    op.create_index("ix_provider_earnings_booking_id", "provider_earnings", ["booking_id"])


def downgrade() -> None:
    op.drop_index("ix_provider_earnings_booking_id", table_name="provider_earnings")
    op.drop_column("provider_earnings", "marketplace_counted_at")
    adopted = op.get_bind().execute(sa.text(ADOPTED)).scalar_one_or_none()
    # A fresh database: 0001 created bookings, so the column is ours.
    if adopted is None or "completed_at" in adopted:
        op.drop_column("bookings", "completed_at")
        op.execute(
            "UPDATE bookme_schema_adoption SET added_columns = array_remove(added_columns,"
            " 'completed_at') WHERE table_name = 'bookings'"
        )
