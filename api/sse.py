"""Server-Sent Events of one booking's audit trail, resumable with `Last-Event-ID`.

Event ids are `booking_events.id` values (increasing per booking), so a reconnecting client
that sends the last id it saw receives exactly the rows after it, in order. Rows that change
the status are sent as `event: status`, other audit rows as `event: audit`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.booking_reads import list_events
from api.convert import event_public
from db.models import BookingEvent

log = structlog.get_logger(__name__)

RECONNECT_MILLISECONDS = 3000
BATCH = 100


def format_event(row: BookingEvent) -> str:
    """One SSE frame for one audit row."""
    kind = "status" if row.to_status is not None and row.to_status != row.from_status else "audit"
    data = event_public(row).model_dump_json()
    return f"id: {row.id}\nevent: {kind}\ndata: {data}\n\n"


async def booking_events(
    sessions: async_sessionmaker[AsyncSession],
    booking_id: uuid.UUID,
    *,
    last_event_id: int,
    poll_interval: float,
    keepalive_interval: float,
    max_seconds: float,
    disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    """Yield frames for rows after `last_event_id`, then new ones as they land, with keep-alives.

    The stream ends after `max_seconds`; the client reconnects with `Last-Event-ID` and loses
    nothing. That bounds how long a shutting-down replica waits for its streams and spreads
    long-lived connections over replicas.
    """
    loop = asyncio.get_running_loop()
    yield f"retry: {RECONNECT_MILLISECONDS}\n\n"
    last = last_event_id
    last_sent = loop.time()
    ends_at = loop.time() + max_seconds
    while loop.time() < ends_at and not await disconnected():
        try:
            async with sessions() as session:
                rows = await list_events(session, booking_id, after=last, limit=BATCH)
        except Exception as exc:  # headers are sent: end the stream, the client reconnects
            log.warning(
                "event stream stopped", booking_id=str(booking_id), error=type(exc).__name__
            )
            return
        for row in rows:
            yield format_event(row)
            last = row.id
            last_sent = loop.time()
        if len(rows) == BATCH:
            continue
        if loop.time() - last_sent >= keepalive_interval:
            # A comment line: keeps proxies from closing an idle connection.
            yield ": keep-alive\n\n"
            last_sent = loop.time()
        await asyncio.sleep(poll_interval)
