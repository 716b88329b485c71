"""Each booking's deadlines on its row, as its workflow computed them from its frozen policy.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06

`payment_deadline_at` (unpaid after it: cancelled) and `release_at` (appointment plus the
auto-complete delay: completed after it) are written when the booking is recorded. The stuck
detector reads them instead of recomputing them from today's settings. Rows from before this
revision (and adopted legacy rows) keep NULL, and the detector falls back to the computation.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("bookings", sa.Column("payment_deadline_at", sa.DateTime(timezone=True)))
    op.add_column("bookings", sa.Column("release_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("bookings", "release_at")
    op.drop_column("bookings", "payment_deadline_at")
