"""The NOTIFY every new `booking_events` row sends: channel, payload, and the trigger's DDL.

Payload ``<booking id>:<event id>``, sent when the inserting transaction commits; the API's
change feed (api/change_feed.py) listens. Migration 0007 installs the same trigger (migrations
are frozen copies); `attach` adds it to tables the models create, so both schemas match.
"""

from __future__ import annotations

from sqlalchemy import DDL, event
from sqlalchemy.sql.expression import FromClause

CHANNEL = "booking_changes"
FUNCTION = f"""
CREATE FUNCTION notify_booking_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', NEW.booking_id::text || ':' || NEW.id::text);
    RETURN NULL;
END
$$
"""
TRIGGER = """
CREATE TRIGGER booking_events_notify AFTER INSERT ON booking_events
FOR EACH ROW EXECUTE FUNCTION notify_booking_change()
"""


def attach(booking_events: FromClause) -> None:
    """Create the function and trigger whenever `booking_events` is created from the models."""
    for ddl in (FUNCTION, TRIGGER):
        create = DDL(ddl)  # type: ignore[no-untyped-call]
        event.listen(booking_events, "after_create", create.execute_if(dialect="postgresql"))
