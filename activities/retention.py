"""Deletes what the retention policy no longer keeps (policy: docs/runbook.md, "Data retention").

- ``blockchain_events``: REORGED rows, and PROCESSED rows both older than ``events_days`` and
  below the scheduled reconcile's re-read window; RECEIVED and FAILED rows are never deleted
  (they are open work or evidence for an operator).
- ``signature_nonces``: rows expired more than ``nonces_days`` ago whose booking is settled
  (COMPLETED or CANCELLED); the stuck-booking detector reads the others.
- ``rate_limit_counters``: windows older than ``rate_limit_hours``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from db.models import BlockchainEvent, Booking, ChainCursor, RateLimitCounter, SignatureNonce
from db.statuses import BlockchainEventStatus, BookingStatus
from workflows.retention import APPLY_RETENTION, RetentionRequest, RetentionResult

BATCH_SIZE = 5_000
SETTLED = (BookingStatus.COMPLETED, BookingStatus.CANCELLED)


def _events_past_policy(request: RetentionRequest, now: datetime) -> ColumnElement[bool]:
    cutoff = now - timedelta(days=request.events_days)
    settled_at = func.coalesce(BlockchainEvent.processed_at, BlockchainEvent.received_at)
    checkpoint = (
        select(ChainCursor.last_block_number)
        .where(
            ChainCursor.chain_id == BlockchainEvent.chain_id,
            ChainCursor.contract_address == BlockchainEvent.contract_address,
        )
        .scalar_subquery()
    )
    return and_(
        settled_at < cutoff,
        or_(
            BlockchainEvent.status == BlockchainEventStatus.REORGED,
            and_(
                BlockchainEvent.status == BlockchainEventStatus.PROCESSED,
                # No checkpoint (listener never ran) compares as NULL: nothing deleted.
                BlockchainEvent.block_number < checkpoint - request.event_lookback_blocks,
            ),
        ),
    )


def _nonces_past_policy(request: RetentionRequest, now: datetime) -> ColumnElement[bool]:
    settled = select(Booking.id).where(Booking.status.in_(SETTLED))
    return and_(
        SignatureNonce.expires_at < now - timedelta(days=request.nonces_days),
        SignatureNonce.booking_id.in_(settled),
    )


async def _count(session: AsyncSession, table: Any, where: ColumnElement[bool]) -> int:
    return int(
        (await session.execute(select(func.count()).select_from(table).where(where))).scalar_one()
    )


async def _delete_in_batches(
    sessions: async_sessionmaker[AsyncSession],
    key: Any,
    where: ColumnElement[bool],
    on_batch: Callable[[int], None],
) -> int:
    """Delete in short transactions so a large backlog never holds long locks."""
    total = 0
    while True:
        batch = select(key).where(where).limit(BATCH_SIZE)
        async with sessions.begin() as session:
            result = await session.execute(delete(key.table).where(key.in_(batch)))
        deleted = int(getattr(result, "rowcount", 0) or 0)
        total += deleted
        on_batch(total)
        if deleted < BATCH_SIZE:
            return total


async def apply_retention(
    sessions: async_sessionmaker[AsyncSession],
    request: RetentionRequest,
    *,
    now: datetime,
    on_batch: Callable[[int], None] = lambda _: None,
) -> RetentionResult:
    """Delete (or with ``dry_run`` count) every row past the policy at ``now``."""
    events = _events_past_policy(request, now)
    nonces = _nonces_past_policy(request, now)
    counters = RateLimitCounter.window_start < now - timedelta(hours=request.rate_limit_hours)
    if request.dry_run:
        async with sessions() as session:
            return RetentionResult(
                blockchain_events=await _count(session, BlockchainEvent, events),
                signature_nonces=await _count(session, SignatureNonce, nonces),
                rate_limit_counters=await _count(session, RateLimitCounter, counters),
                dry_run=True,
            )
    deleted_events = await _delete_in_batches(sessions, BlockchainEvent.id, events, on_batch)
    deleted_nonces = await _delete_in_batches(sessions, SignatureNonce.nonce, nonces, on_batch)
    async with sessions.begin() as session:
        result = await session.execute(delete(RateLimitCounter).where(counters))
    return RetentionResult(
        blockchain_events=deleted_events,
        signature_nonces=deleted_nonces,
        rate_limit_counters=int(getattr(result, "rowcount", 0) or 0),
    )


class RetentionActivities:
    """The retention activity, bound to the worker's session factory."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn(name=APPLY_RETENTION)
    async def apply_retention(self, request: RetentionRequest) -> RetentionResult:
        """Apply the policy now; heartbeats after every batch."""
        return await apply_retention(
            self._sessions, request, now=datetime.now(UTC), on_batch=activity.heartbeat
        )
