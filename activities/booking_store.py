"""``BookingStore``: the booking's Postgres writes, each one transaction and safe to repeat."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Iterator
from enum import Enum
from typing import Any

import structlog
from sqlalchemy import ColumnElement, String, case, cast, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities import settlement_rows
from activities.booking_row import adopt_marketplace_row, booking_uuid, managed_columns
from db import outbox
from db.errors import is_invalid_data, sqlstate
from db.marketplace_counters import MarketplaceCounters
from db.models import BlockchainEvent, Booking, BookingEvent
from db.statuses import BlockchainEventStatus
from db.statuses import BookingStatus as DbStatus
from workflows import constants as c
from workflows.audit import AuditAction
from workflows.errors import ActivityRejected
from workflows.event_codec import row_payload
from workflows.types import (
    BookingInput,
    ChainEventKind,
    ChainEventSignal,
    EventOutcome,
    OrphanRecord,
    StoredBooking,
    TransitionRecord,
    TxColumn,
)

log = structlog.get_logger(__name__)


def _orphan_reason(action: str) -> ColumnElement[str]:
    """``orphan: <action>``, naming the booking when the payment's row has one: a payment that
    landed after its booking's workflow had closed unpaid, which the listener refunds as an orphan.
    """
    booking = BlockchainEvent.booking_id
    return func.concat(
        f"orphan: {action}",
        case(
            (
                booking.is_not(None),
                func.concat(" (late payment for closed booking ", cast(booking, String), ")"),
            ),
            else_="",
        ),
    )


ACTOR = "workflow"
_SENT_COLUMNS = {
    TxColumn.COMPLETION: "completion_tx_hash",
    TxColumn.CANCELLATION: "cancellation_tx_hash",
}


def _jsonable(value: Any) -> Any:
    """Dataclass -> JSON-safe dict; ints as decimal strings (JSON numbers lose uint256 precision)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


@contextlib.contextmanager
def _unstorable_is_final(what: str) -> Iterator[None]:
    """Data Postgres can never store (NUL in text, a broken constraint) fails for good.

    Retrying such a write forever would hold the workflow task and the worker slot it runs in,
    and slow every other booking down; a non-retryable error lets the workflow record why.
    """
    try:
        yield
    except DBAPIError as err:
        if not is_invalid_data(err):
            raise
        raise ActivityRejected(
            f"Postgres cannot store this {what} (SQLSTATE {sqlstate(err)})"
        ) from None
    except (StatementError, UnicodeError) as err:
        # Text that is not valid UTF-8 (a lone surrogate) fails in the driver, before Postgres.
        if isinstance(err, StatementError) and not isinstance(err.orig, UnicodeError):
            raise
        raise ActivityRejected(f"Postgres cannot store this {what} (not valid UTF-8)") from None


class BookingStore:
    """Booking rows, the audit trail, event marks and settlement legs."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        escrow_address: str,
        *,
        actor: str = ACTOR,
        counters: MarketplaceCounters | None = None,
    ):
        self._sessions = session_factory
        self._escrow = escrow_address
        # Who the audit rows name: the workflow, or an operator's CLI recording around it.
        self._actor = actor
        # The marketplace's users.total_earnings / completed_services, where its tables have them.
        self._counters = counters or MarketplaceCounters()

    @activity.defn(name=c.RECORD_BOOKING)
    async def record_booking(self, booking: BookingInput) -> StoredBooking:
        """Insert the booking as PENDING_PAYMENT unless it exists; refuse a conflicting twin.

        Answers the row's timestamps: the API's creation answers from them, not from a read."""
        booking_id = booking_uuid(booking.booking_id)
        platform_bps, inviter_bps = booking.policy.fee_rates(
            has_inviter=booking.inviter_wallet is not None
        )
        with _unstorable_is_final("booking"):
            return await self._insert_booking(booking_id, booking, platform_bps, inviter_bps)

    async def _insert_booking(
        self, booking_id: uuid.UUID, booking: BookingInput, platform_bps: int, inviter_bps: int
    ) -> StoredBooking:
        columns = managed_columns(booking, platform_bps, inviter_bps)
        async with self._sessions.begin() as session:
            inserted = await session.execute(
                insert(Booking)
                .values(
                    id=booking_id,
                    service_id=booking.service_id,
                    customer_id=booking.customer_id,
                    provider_id=booking.provider_id,
                    scheduled_at=booking.scheduled_at,
                    status=DbStatus.PENDING_PAYMENT,
                    created_at=func.now(),
                    **columns,
                )
                .on_conflict_do_nothing(index_elements=[Booking.id])
                .returning(Booking.created_at, Booking.updated_at)
            )
            created = inserted.one_or_none()
            if created is not None:
                times = (created.created_at, created.updated_at)
            else:
                # The marketplace's own row (adopted: updated, never duplicated), or a retry.
                await adopt_marketplace_row(session, booking_id, booking, columns)
                row = await self._check_same_booking(session, booking_id, booking)
                times = (row.created_at, row.updated_at)
            await session.execute(
                insert(BookingEvent)
                .values(
                    booking_id=booking_id,
                    from_status=None,
                    to_status=DbStatus.PENDING_PAYMENT,
                    kind=AuditAction.CREATED,
                    actor=ACTOR,
                    dedupe_key=f"{booking.booking_id}:created",
                    details={"policy": _jsonable(booking.policy)},
                    created_at=func.now(),
                )
                .on_conflict_do_nothing(
                    index_elements=[BookingEvent.booking_id, BookingEvent.dedupe_key],
                    index_where=BookingEvent.dedupe_key.is_not(None),
                )
            )
        return StoredBooking(created_at=times[0], updated_at=times[1])

    async def _check_same_booking(
        self, session: AsyncSession, booking_id: uuid.UUID, booking: BookingInput
    ) -> Booking:
        row = (
            await session.execute(select(Booking).where(Booking.id == booking_id, Booking.managed))
        ).scalar_one_or_none()
        if row is None:
            # A marketplace row adoption left alone (no workflow; its status may be none of ours).
            raise ActivityRejected(
                f"booking {booking_id} is a marketplace row this service cannot adopt"
                " (not PENDING_PAYMENT, or other parties or amount)",
                error_type=c.BOOKING_CONFLICT,
            )
        same = (
            row.amount_units == booking.amount_units
            and (row.customer_wallet or "").lower() == booking.customer_wallet.lower()
            and (row.provider_wallet or "").lower() == booking.provider_wallet.lower()
            and (row.inviter_wallet or "").lower() == (booking.inviter_wallet or "").lower()
            and (row.blockchain_booking_id or booking.chain_booking_id).lower()
            == booking.chain_booking_id.lower()
        )
        if not same:
            raise ActivityRejected(
                f"booking {booking_id} exists with different parties or amount",
                error_type=c.BOOKING_CONFLICT,
            )
        return row

    @activity.defn(name=c.APPLY_TRANSITION)
    async def apply_transition(self, record: TransitionRecord) -> None:
        """Status, audit row, event mark and settlement legs in one transaction, once per key."""
        booking_id = booking_uuid(record.booking_id)
        with _unstorable_is_final("transition"):
            await self._apply(booking_id, record)
        log.info(
            "booking_transition",
            booking_id=record.booking_id,
            action=record.action,
            from_status=record.from_status.value,
            to_status=record.to_status.value,
        )

    async def _apply(self, booking_id: uuid.UUID, record: TransitionRecord) -> None:
        async with self._sessions.begin() as session:
            seen = await session.execute(
                select(BookingEvent.id).where(
                    BookingEvent.booking_id == booking_id,
                    BookingEvent.dedupe_key == record.dedupe_key,
                )
            )
            if seen.first() is not None:
                return  # a retry of a transition that committed
            if record.from_status is not record.to_status:
                await self._update_booking(session, booking_id, record)
            event = record.event
            await session.execute(
                insert(BookingEvent).values(
                    booking_id=booking_id,
                    from_status=DbStatus(record.from_status.value),
                    to_status=DbStatus(record.to_status.value),
                    kind=record.action,
                    reason=record.reason,
                    actor=self._actor,
                    chain_id=event.identity.chain_id if event else None,
                    tx_hash=(event.identity.tx_hash if event else record.tx_hash),
                    log_index=event.identity.log_index if event else None,
                    dedupe_key=record.dedupe_key,
                    details={
                        "event": _jsonable(event),
                        "settlement": _jsonable(record.settlement),
                        "occurred_at": record.occurred_at.isoformat(),
                    },
                    created_at=func.now(),
                )
            )
            if event is not None and record.event_outcome is not None:
                await self._mark_event(session, event, record.event_outcome, booking_id, record)
            if event is not None and record.settlement is not None:
                await settlement_rows.record(session, booking_id, event, record.settlement)
            if event is not None and record.event_outcome is EventOutcome.REORGED:
                await settlement_rows.revert(session, event)
            # The marketplace's webhooks, committed with the change they announce.
            await outbox.record_transition(session, booking_id, record)
            await self._counters.settle(session, booking_id)

    async def _update_booking(
        self, session: AsyncSession, booking_id: uuid.UUID, record: TransitionRecord
    ) -> None:
        values: dict[str, Any] = {
            "status": DbStatus(record.to_status.value),
            "status_reason": record.reason,
            "version": Booking.version + 1,
            "updated_at": func.now(),
        }
        event = record.event
        if event is not None and event.kind is ChainEventKind.PAYMENT:
            if record.event_outcome is EventOutcome.PROCESSED:
                values["blockchain_tx_hash"] = event.identity.tx_hash
                values["blockchain_confirmed_at"] = func.now()
                values["blockchain_data"] = {"payment": _jsonable(event)}
            elif record.event_outcome is EventOutcome.REORGED:
                values["blockchain_tx_hash"] = None
                values["blockchain_confirmed_at"] = None
        if record.sent is not None:
            values[_SENT_COLUMNS[record.sent.column]] = record.sent.tx_hash
        if event is not None and event.kind is ChainEventKind.COMPLETION:
            values["completion_tx_hash"] = event.identity.tx_hash
        if DbStatus.COMPLETED in (record.to_status, record.from_status):
            # The marketplace's column: set on completion, cleared if a reorg takes it back.
            values["completed_at"] = func.now() if record.to_status is DbStatus.COMPLETED else None
        if event is not None and event.kind is ChainEventKind.CANCELLATION:
            values["cancellation_tx_hash"] = event.identity.tx_hash
        result = await session.execute(
            update(Booking).where(Booking.id == booking_id).values(**values)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise ActivityRejected(
                f"booking {booking_id} has no row to update", error_type=c.BOOKING_CONFLICT
            )

    async def _mark_event(
        self,
        session: AsyncSession,
        event: ChainEventSignal,
        outcome: EventOutcome,
        booking_id: uuid.UUID | None,
        record: TransitionRecord | None,
    ) -> None:
        """Upsert the event's row (the poll may have found it before the listener stored it)."""
        status = BlockchainEventStatus(outcome.value)
        reason = (
            record.reason if record is not None and outcome is not EventOutcome.PROCESSED else None
        )
        await session.execute(
            insert(BlockchainEvent)
            .values(
                chain_id=event.identity.chain_id,
                tx_hash=event.identity.tx_hash.lower(),
                log_index=event.identity.log_index,
                block_number=event.identity.block_number,
                block_hash=event.identity.block_hash.lower(),
                contract_address=self._escrow,
                event_type=event.kind.value,
                chain_booking_id=event.chain_booking_id.lower(),
                booking_id=booking_id,
                payload=row_payload(event),
                status=status,
                status_reason=reason,
                received_at=func.now(),
                processed_at=func.now(),
            )
            .on_conflict_do_update(
                index_elements=[
                    BlockchainEvent.chain_id,
                    BlockchainEvent.tx_hash,
                    BlockchainEvent.log_index,
                ],
                set_={
                    "status": status,
                    "status_reason": reason,
                    "booking_id": func.coalesce(BlockchainEvent.booking_id, booking_id),
                    "block_number": event.identity.block_number,
                    "block_hash": event.identity.block_hash.lower(),
                    "processed_at": func.now(),
                },
            )
        )

    @activity.defn(name=c.RECORD_ORPHAN)
    async def record_orphan(self, record: OrphanRecord) -> None:
        """Orphans have no booking row: their trail is the events' status and the log."""
        async with self._sessions.begin() as session:
            if not record.payment_live:
                outcome = EventOutcome.REORGED
            elif record.refund is not None:
                outcome = EventOutcome.PROCESSED
            else:
                outcome = EventOutcome.FAILED
            await self._mark_event(session, record.payment, outcome, None, None)
            await session.execute(
                update(BlockchainEvent)
                .where(
                    BlockchainEvent.chain_id == record.payment.identity.chain_id,
                    BlockchainEvent.tx_hash == record.payment.identity.tx_hash.lower(),
                    BlockchainEvent.log_index == record.payment.identity.log_index,
                )
                .values(status_reason=_orphan_reason(record.action))
            )
            if record.refund is not None:
                await self._mark_event(session, record.refund, EventOutcome.PROCESSED, None, None)
            await outbox.record_orphan(session, record)
        log.warning(
            "orphan_payment",
            action=record.action,
            chain_booking_id=record.chain_booking_id,
            payment_tx=record.payment.identity.tx_hash,
            refund_tx=record.refund_tx_hash,
        )
