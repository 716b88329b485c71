"""Re-run a workflow's recorded projection writes through the worker's own store.

Each write is the activity the workflow ran (``BookingStore``/``ResyncStore``), called with the
input the workflow gave it: a write whose key is already in Postgres changes nothing, a lost one
is written again exactly as the first time, in the workflow's order, so the booking row ends in
the status of the workflow's last transition.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from activities.reconcile.resync_store import ResyncStore
from bookme.ops.rebuild_capture import RecordedWrite
from db.models import NONCE_SEQUENCE, BlockchainEvent, Booking, BookingEvent
from db.settlement_models import PlatformFee, ProviderEarning, Refund
from db.webhook_models import WebhookOutbox
from workflows import constants as c
from workflows.reconcile_types import RESYNC_BOOKING
from workflows.types import BookingResync, TransitionRecord

# The projection's tables, in the order the summary prints them.
PROJECTION_TABLES: tuple[Any, ...] = (
    Booking,
    BookingEvent,
    BlockchainEvent,
    ProviderEarning,
    PlatformFee,
    Refund,
    WebhookOutbox,
)

# Never below every nonce an issued authorization carries: the contract refuses a used nonce,
# so a sequence restored to an older value would make new customers' payments revert.
_NONCE_FLOOR = text(
    f"SELECT setval('{NONCE_SEQUENCE}', GREATEST(:floor, last_value), true) FROM {NONCE_SEQUENCE}"  # noqa: S608 - a constant
)


class RebuildRefused(Exception):
    """Postgres refused a recorded write it had accepted before; the message says why."""


def _writer(store: ResyncStore, activity: str) -> Callable[[Any], Awaitable[Any]]:
    writers: dict[str, Callable[[Any], Awaitable[Any]]] = {
        c.RECORD_BOOKING: store.record_booking,
        c.APPLY_TRANSITION: store.apply_transition,
        RESYNC_BOOKING: store.resync_booking,
        c.RECORD_ORPHAN: store.record_orphan,
    }
    return writers[activity]


def _status_change_key(write: RecordedWrite) -> str | None:
    """The dedupe key of a write that sets the booking row's status, else None."""
    arg = write.arg
    if isinstance(arg, TransitionRecord) and arg.from_status is not arg.to_status:
        return arg.dedupe_key
    if isinstance(arg, BookingResync):
        return arg.dedupe_key
    return None


def status_left_behind(writes: list[RecordedWrite], present: set[str]) -> str | None:
    """Why the row would end at an older status than the workflow's, if it would.

    Each write sets the status it carries, and a write already present is skipped: when the
    workflow's last status change is present but an earlier one was missing, re-running the
    earlier one puts the row back (a worker wrote again between the restore and the rebuild).
    """
    keys = [key for key in map(_status_change_key, writes) if key is not None]
    if not keys or keys[-1] not in present or all(key in present for key in keys):
        return None
    return (
        f"its last status change ({keys[-1]}) was written after the restore, before older ones"
        " the rebuild wrote again: the row's status is older than the workflow's (a worker ran"
        " before the rebuild); `bookme show` it, then `bookme reconcile --full --wait`"
    )


async def _present(sessions: async_sessionmaker[AsyncSession], booking_id: str) -> set[str]:
    async with sessions() as session:
        keys = await session.scalars(
            select(BookingEvent.dedupe_key).where(
                BookingEvent.booking_id == uuid.UUID(booking_id),
                BookingEvent.dedupe_key.is_not(None),
            )
        )
        return {key for key in keys if key is not None}


async def replay_writes(
    store: ResyncStore, sessions: async_sessionmaker[AsyncSession], writes: list[RecordedWrite]
) -> str | None:
    """One workflow's writes in order; stops at the first one Postgres refuses. Answers why the
    row's status would still be behind the workflow's, if it would."""
    booking = next(
        (w.arg.booking_id for w in writes if isinstance(w.arg, TransitionRecord | BookingResync)),
        None,
    )
    present = set() if booking is None else await _present(sessions, booking)
    for write in writes:
        try:
            await _writer(store, write.activity)(write.arg)
        except (ApplicationError, DBAPIError) as exc:
            # Written once already, so this is the database's state, not the input: an
            # operator looks (the rest of this booking would build on a missing row).
            raise RebuildRefused(f"{write.activity} refused: {str(exc).splitlines()[0]}") from None
    return status_left_behind(writes, present)


async def count_rows(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Rows per projection table."""
    async with sessions() as session:
        return {
            table.__tablename__: int(
                await session.scalar(select(func.count()).select_from(table)) or 0
            )
            for table in PROJECTION_TABLES
        }


async def raise_nonce_floor(sessions: async_sessionmaker[AsyncSession], floor: int) -> None:
    """Make the next reserved signature nonce larger than ``floor``."""
    async with sessions.begin() as session:
        await session.execute(_NONCE_FLOOR, {"floor": floor})
