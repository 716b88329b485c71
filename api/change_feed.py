"""One Postgres LISTEN per API process, fanned out to the event streams watching each booking.

    INSERT booking_events --trigger (migration 0007)--> NOTIFY booking_changes '<booking>:<event>'
        --> ChangeFeed: one asyncpg connection, LISTEN --> the Subscriptions of that booking
        --> each stream reads what changed through EventReader (one connection, batched reads)

So streaming uses two database connections whatever the number of streams. The rules:

- A notification only says *when* to read: a stream always reads every row after the last one
  it sent, so a lost, merged or duplicated notification costs a read, never a row.
- Postgres sends a notification when the inserting transaction commits: the read that follows
  sees the row.
- The LISTEN connection can drop. The feed reconnects with backoff and, once listening again,
  wakes every stream to re-read (notifications sent meanwhile are gone). While it is down,
  streams re-read every `fallback_poll` seconds.
- A slow stream never holds the feed up: its queue is bounded, and a full queue is marked
  overflowed (the stream re-reads once) instead of growing.
- When the process is asked to stop, `close_all` ends every stream (they check `draining`):
  the server would otherwise wait for them, minutes, and be killed with requests in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator

import asyncpg
import structlog
from sqlalchemy.engine import URL, make_url

from api.event_reader import EventReader, running
from db.change_notify import CHANNEL

log = structlog.get_logger(__name__)

LISTEN_APPLICATION_NAME = "bookme-api-stream-listen"
QUEUE_SIZE = 16
# Every notification wakes its streams; this one wakes every stream (after a reconnect).
RESYNC = -1


class Subscription:
    """One stream's wake-ups: event ids announced for its booking, bounded."""

    def __init__(self, booking_id: uuid.UUID, *, maxsize: int = QUEUE_SIZE) -> None:
        self.booking_id = booking_id
        self._queue: asyncio.Queue[int] = asyncio.Queue(maxsize)
        self._reread = False  # a resync or an overflow since the last wait: read whatever
        self.overflowed = 0  # wake-ups folded into a re-read instead of queued

    def offer(self, event_id: int) -> None:
        """Queue a wake-up; when full, the stream re-reads once instead of queueing more."""
        if event_id == RESYNC:
            self._reread = True
        try:
            self._queue.put_nowait(event_id)
        except asyncio.QueueFull:
            self._reread = True
            self.overflowed += 1

    async def wait(self, within: float) -> int | None:
        """The highest event id announced since the last call (RESYNC for "re-read"), or None
        after `within` seconds with nothing announced."""
        try:
            async with asyncio.timeout(max(0.0, within)):
                newest = await self._queue.get()
        except TimeoutError:
            return None
        while not self._queue.empty():
            newest = max(newest, self._queue.get_nowait())
        if self._reread:
            self._reread = False
            return RESYNC
        return newest


class ChangeFeed:
    """The process's LISTEN connection and the registry of streams per booking."""

    def __init__(
        self,
        dsn: str,
        reader: EventReader,
        *,
        reconnect_max_seconds: float = 5.0,
        ping_seconds: float = 15.0,
    ) -> None:
        self.reader = reader
        self._dsn = dsn
        self._reconnect_max = reconnect_max_seconds
        self._ping = ping_seconds
        self._subscriptions: defaultdict[uuid.UUID, set[Subscription]] = defaultdict(set)
        self.listening = asyncio.Event()  # set while LISTEN is in place
        self.reconnects = 0
        self.draining = False  # the process is stopping: streams end, new ones end at once

    @property
    def streams(self) -> int:
        return sum(len(subs) for subs in self._subscriptions.values())

    @contextlib.contextmanager
    def subscribe(self, booking_id: uuid.UUID) -> Iterator[Subscription]:
        """Wake-ups for `booking_id` while the block runs."""
        subscription = Subscription(booking_id)
        self._subscriptions[booking_id].add(subscription)
        try:
            yield subscription
        finally:
            subs = self._subscriptions[booking_id]
            subs.discard(subscription)
            if not subs:
                del self._subscriptions[booking_id]

    def dispatch(self, payload: str) -> None:
        """One notification: wake the streams of its booking (a bad payload wakes none)."""
        booking, _, event = payload.partition(":")
        try:
            booking_id, event_id = uuid.UUID(booking), int(event)
        except ValueError:
            log.warning("unreadable booking change notification", payload=payload[:100])
            return
        for subscription in self._subscriptions.get(booking_id, ()):
            subscription.offer(event_id)

    def resync(self) -> None:
        """Wake every stream to re-read (notifications may have been missed)."""
        for subs in self._subscriptions.values():
            for subscription in subs:
                subscription.offer(RESYNC)

    def close_all(self) -> None:
        """End every open stream now (each has sent ``retry:``; its client reconnects with
        Last-Event-ID to another replica) and every stream opened from now on."""
        self.draining = True
        self.resync()

    async def run(self) -> None:
        """Listen until cancelled: reconnect with backoff, re-read everything after each."""
        delay = 0.1
        while True:
            try:
                await self._listen_once()
                delay = 0.1
            except Exception as exc:  # any failure: the streams fall back to polling meanwhile
                log.warning("change feed lost its connection", error=type(exc).__name__)
            self.listening.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._reconnect_max)
            self.reconnects += 1

    async def _listen_once(self) -> None:
        conn = await asyncpg.connect(
            self._dsn, server_settings={"application_name": LISTEN_APPLICATION_NAME}
        )
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(CHANNEL, lambda _c, _pid, _ch, payload: self.dispatch(payload))
            self.listening.set()
            self.resync()  # whatever changed while nobody listened
            log.info("change feed listening", channel=CHANNEL)
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._ping):
                        await lost.wait()
                if not lost.is_set():
                    # A silent network drop sends no termination: ask.
                    async with asyncio.timeout(self._ping):
                        await conn.fetchval("SELECT 1")
        finally:
            self.listening.clear()
            if not conn.is_closed():
                conn.terminate()


@contextlib.asynccontextmanager
async def change_feed(database_url: str | URL) -> AsyncIterator[ChangeFeed]:
    """The process's feed and reader, running until the block ends: every stream waits on
    this one LISTEN connection and reads through one more, whatever their number."""
    url = make_url(database_url)
    async with EventReader.connect(url.render_as_string(hide_password=False)) as reader:
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        feed = ChangeFeed(dsn, reader)
        async with running(feed.run(), name="change-feed"):
            yield feed


__all__ = ["CHANNEL", "ChangeFeed", "Subscription", "change_feed"]
