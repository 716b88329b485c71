"""The booking workflow's ``resync`` write: its own view over a row edited behind its back.

The workflow's ``resync`` update calls it as an activity; the reconciler calls it directly for a
closed workflow, which can take no update.
"""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from activities.booking_row import booking_uuid
from activities.booking_store import BookingStore
from chain.event_key import event_key
from db.models import BlockchainEvent, Booking, BookingEvent
from db.statuses import BlockchainEventStatus
from db.statuses import BookingStatus as DbStatus
from workflows.audit import AuditAction
from workflows.errors import ActivityRejected
from workflows.reconcile_types import RESYNC_BOOKING
from workflows.types import BookingResync, EventOutcome

log = structlog.get_logger(__name__)

# Who the reconciler's audit rows and resync requests name.
ACTOR = "reconciler"


class ResyncStore(BookingStore):
    """Same tables and event marks as `BookingStore`; adds the resync write."""

    @activity.defn(name=RESYNC_BOOKING)
    async def resync_booking(self, record: BookingResync) -> None:
        """Status, tx hashes and applied-event marks as the workflow holds them, audited once."""
        booking_id = booking_uuid(record.booking_id)
        async with self._sessions.begin() as session:
            seen = await session.execute(
                select(BookingEvent.id).where(
                    BookingEvent.booking_id == booking_id,
                    BookingEvent.dedupe_key == record.dedupe_key,
                )
            )
            if seen.first() is not None:
                return
            row = (
                await session.execute(
                    select(Booking.status, Booking.status_reason)
                    .where(Booking.id == booking_id)
                    .with_for_update()
                )
            ).first()
            if row is None:
                raise ActivityRejected(f"booking {booking_id} has no row to resync")
            db_status, db_reason = row
            await self._update_row(session, booking_id, record)
            settled = await self._settled_keys(session, record)
            marked = [e for e in record.applied_events if e.key not in settled]
            for event in marked:
                await self._mark_event(session, event, EventOutcome.PROCESSED, booking_id, None)
            await session.execute(
                insert(BookingEvent).values(
                    booking_id=booking_id,
                    from_status=DbStatus(db_status),
                    to_status=DbStatus(record.status.value),
                    kind=AuditAction.RESYNC,
                    reason=f"{record.requested_by}: {record.request_reason}",
                    actor=ACTOR,
                    dedupe_key=record.dedupe_key,
                    details={
                        "db_status": str(db_status),
                        "db_reason": db_reason,
                        "workflow_status": record.status.value,
                        "events_marked": [e.key for e in marked],
                        "occurred_at": record.occurred_at.isoformat(),
                    },
                    created_at=func.now(),
                )
            )
        log.warning(
            "booking_resynced",
            booking_id=record.booking_id,
            db_status=str(db_status),
            workflow_status=record.status.value,
            requested_by=record.requested_by,
        )

    @staticmethod
    async def _update_row(
        session: AsyncSession, booking_id: uuid.UUID, record: BookingResync
    ) -> None:
        """Status and tx hashes as the workflow holds them (a hash it lacks stays as it is)."""
        values: dict[str, object] = {
            "status": DbStatus(record.status.value),
            "status_reason": record.reason,
            "version": Booking.version + 1,
            "updated_at": func.now(),
        }
        if record.completion_tx_hash is not None:
            values["completion_tx_hash"] = record.completion_tx_hash
        if record.refund_tx_hash is not None:
            values["cancellation_tx_hash"] = record.refund_tx_hash
        await session.execute(update(Booking).where(Booking.id == booking_id).values(**values))

    @staticmethod
    async def _settled_keys(session: AsyncSession, record: BookingResync) -> set[str]:
        """Applied events whose row already has a final status (a FAILED mark stays FAILED)."""
        if not record.applied_events:
            return set()
        rows = await session.execute(
            select(
                BlockchainEvent.chain_id, BlockchainEvent.tx_hash, BlockchainEvent.log_index
            ).where(
                BlockchainEvent.tx_hash.in_(
                    sorted({e.identity.tx_hash.lower() for e in record.applied_events})
                ),
                BlockchainEvent.status != BlockchainEventStatus.RECEIVED,
            )
        )
        return {event_key(chain, tx, index) for chain, tx, index in rows}
