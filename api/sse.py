"""Server-Sent Events of one booking's audit trail, resumable with `Last-Event-ID`.

Event ids are `booking_events.id` values (increasing per booking), so a reconnecting client
that sends the last id it saw receives exactly the rows after it, in order. Rows that change
the status are sent as `event: status`; a payment seen before its confirmations (or its
withdrawal by a reorg) as `event: payment_seen`, its `reason` saying "payment seen, n of N
confirmations"; other audit rows as `event: audit`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog

from api.change_feed import RESYNC, ChangeFeed
from api.convert import event_public
from api.event_reader import BATCH
from db.models import BookingEvent
from workflows.audit import AuditAction

log = structlog.get_logger(__name__)

RECONNECT_MILLISECONDS = 3000
# Audit rows a customer's screen shows as the payment's progress, not as the audit trail.
SIGHTING_KINDS = frozenset({AuditAction.PAYMENT_SEEN, AuditAction.PAYMENT_SEEN_CLEARED})


def format_event(row: BookingEvent) -> str:
    """One SSE frame for one audit row."""
    if row.to_status is not None and row.to_status != row.from_status:
        kind = "status"
    elif row.kind in SIGHTING_KINDS:
        kind = "payment_seen"
    else:
        kind = "audit"
    data = event_public(row).model_dump_json()
    return f"id: {row.id}\nevent: {kind}\ndata: {data}\n\n"


async def booking_events(
    feed: ChangeFeed,
    booking_id: uuid.UUID,
    *,
    last_event_id: int,
    fallback_poll: float,
    keepalive_interval: float,
    max_seconds: float,
    disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    """Yield frames for rows after `last_event_id`, then new ones as they land, with keep-alives.

    Woken by the process's change feed (api/change_feed.py), not by polling; it reads what
    changed through the feed's shared reader. While the feed is not listening it re-reads every
    `fallback_poll` seconds. The stream ends after `max_seconds`; the client reconnects with
    `Last-Event-ID` and loses nothing. That spreads long-lived connections over replicas; a
    replica asked to stop ends its streams at once (`ChangeFeed.close_all`).
    """
    loop = asyncio.get_running_loop()
    yield f"retry: {RECONNECT_MILLISECONDS}\n\n"
    last = last_event_id
    last_sent = loop.time()
    ends_at = loop.time() + max_seconds
    with feed.subscribe(booking_id) as changes:
        read = True  # the backlog first
        while loop.time() < ends_at and not feed.draining and not await disconnected():
            if read:
                try:
                    rows = await feed.reader.read(booking_id, after=last)
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
            wait = min(keepalive_interval - (loop.time() - last_sent), ends_at - loop.time())
            if not feed.listening.is_set():
                wait = min(wait, fallback_poll)
            announced = await changes.wait(wait)
            # Announced rows not sent yet, a re-read after a reconnect, or polling meanwhile.
            read = (announced is not None and (announced == RESYNC or announced > last)) or (
                not feed.listening.is_set()
            )
