"""Booking changes announced: every new `booking_events` row sends NOTIFY `booking_changes`.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

An AFTER INSERT trigger calls `pg_notify('booking_changes', '<booking id>:<event id>')`. Postgres
delivers a notification only when the inserting transaction commits, so a listener that reads
after it sees the row. Each API process holds one LISTEN connection and wakes the event streams
watching that booking (api/change_feed.py) instead of every stream polling. Every writer of
the audit trail (the workflow's store, the reconciler, an operator's CLI) is covered without
knowing about it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "booking_changes"  # api/change_feed.py listens on it


def upgrade() -> None:
    op.execute(
        f"""
        CREATE FUNCTION notify_booking_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', NEW.booking_id::text || ':' || NEW.id::text);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER booking_events_notify AFTER INSERT ON booking_events
        FOR EACH ROW EXECUTE FUNCTION notify_booking_change()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS booking_events_notify ON booking_events")
    op.execute("DROP FUNCTION IF EXISTS notify_booking_change()")
