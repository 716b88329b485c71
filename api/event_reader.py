"""Audit-trail reads for every event stream of the process, over one connection, in batches.

Streams ask for "rows of booking B after id A". Requests that arrive while a query runs wait
for the next one, and one query answers them all: a change watched by a thousand streams is
one read, and the reader never holds more than one connection (its own small pool, named in
``pg_stat_activity`` so an operator sees what streaming uses).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any

import structlog
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.engine import make_engine, make_session_factory
from db.models import BookingEvent

log = structlog.get_logger(__name__)

READ_APPLICATION_NAME = "bookme-api-stream-read"
BATCH = 100  # rows per stream per read; a stream with more reads again at once
MAX_BOOKINGS_PER_QUERY = 200

_Key = tuple[uuid.UUID, int]


class EventReader:
    """Answers `read(booking, after)` calls in shared, batched queries (one at a time)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._pending: dict[_Key, asyncio.Future[list[BookingEvent]]] = {}
        self._wake = asyncio.Event()
        self.queries = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, database_url: str) -> AsyncIterator[EventReader]:
        """A reader on its own one-connection pool, running until the block ends."""
        # One query at a time (the loop below), so the pool never opens a second connection.
        engine = make_engine(database_url, pool_size=1, application_name=READ_APPLICATION_NAME)
        reader = cls(make_session_factory(engine))
        try:
            async with running(reader.run(), name="event-reader"):
                yield reader
        finally:
            await engine.dispose()

    async def read(self, booking_id: uuid.UUID, after: int) -> list[BookingEvent]:
        """Up to BATCH rows of `booking_id` with id > `after`, oldest first."""
        key = (booking_id, after)
        future = self._pending.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._pending[key] = future
            self._wake.set()
        # Shielded: the future is shared; one stream going away must not cancel the others' read.
        return await asyncio.shield(future)

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                keys = _take(self._pending)
                batch = {key: self._pending.pop(key) for key in keys}
                try:
                    rows = await self._query(keys)
                except Exception as exc:  # each stream ends; its client reconnects
                    log.warning("event stream read failed", error=type(exc).__name__)
                    for future in batch.values():
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for key, future in batch.items():
                    if not future.done():
                        future.set_result(_rows_for(rows, key))

    async def _query(self, keys: Sequence[_Key]) -> Sequence[BookingEvent]:
        """Every row after the lowest `after` asked for each booking in `keys`."""
        lowest: dict[uuid.UUID, int] = {}
        for booking_id, after in keys:
            lowest[booking_id] = min(after, lowest.get(booking_id, after))
        stmt = (
            select(BookingEvent)
            .where(
                or_(
                    *(
                        and_(BookingEvent.booking_id == booking_id, BookingEvent.id > after)
                        for booking_id, after in lowest.items()
                    )
                )
            )
            .order_by(BookingEvent.id)
        )
        self.queries += 1
        async with self._sessions() as session:
            return (await session.scalars(stmt)).all()


@contextlib.asynccontextmanager
async def running(loop: Coroutine[Any, Any, None], *, name: str) -> AsyncIterator[None]:
    """Run `loop` as a task while the block runs; cancel it after."""
    task = asyncio.create_task(loop, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _take(pending: dict[_Key, asyncio.Future[list[BookingEvent]]]) -> list[_Key]:
    """The keys of at most MAX_BOOKINGS_PER_QUERY bookings, oldest requests first."""
    bookings: set[uuid.UUID] = set()
    keys: list[_Key] = []
    for key in pending:
        if key[0] not in bookings and len(bookings) == MAX_BOOKINGS_PER_QUERY:
            continue
        bookings.add(key[0])
        keys.append(key)
    return keys


def _rows_for(rows: Sequence[BookingEvent], key: _Key) -> list[BookingEvent]:
    booking_id, after = key
    mine = [row for row in rows if row.booking_id == booking_id and row.id > after]
    return mine[:BATCH]


__all__ = ["BATCH", "READ_APPLICATION_NAME", "EventReader"]
