"""The money invariants of issue #7, usable from the reconcile activity, the chaos bench and tests.

1. ``escrow_balance``: the escrow's USDC balance equals the amounts of bookings whose money is
   held (PAID, PENDING_COMPLETION, PENDING_CANCELLATION in Postgres) plus the owed balances of
   blocked recipients, plus orphan payments not yet refunded (``orphan_flows``: no row, or a
   row that closed CANCELLED without them).
2. ``settlement_totals``: provider earnings + platform and inviter fees + refund legs recorded in
   Postgres (live rows) equal what the ServiceCompleted / BookingCancelled logs released on-chain
   for our bookings, per booking and in total.
3. ``events_settled``: no ``blockchain_events`` row stays RECEIVED past ``received_grace``, and
   every FAILED row carries a reason.

Each result counts violations (0 = holds) and names the differences in USDC base units.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.reconcile.logs import DEFAULT_MAX_BLOCK_RANGE, read_escrow_events
from activities.reconcile.orphan_flows import HeldTxs, OrphanFlows, orphan_flows
from chain.escrow import EscrowReader
from chain.events import BookingCancelled, BookingCreatedAndPaid, ServiceCompleted
from db.held_tx import HELD_TX_COLUMN
from db.models import BlockchainEvent, Booking
from db.settlement_models import PlatformFee, ProviderEarning, Refund
from db.statuses import BlockchainEventStatus
from db.statuses import BookingStatus as DbStatus
from workflows.reconcile_types import InvariantName
from workflows.types import MONEY_HELD_STATUSES

# Sorted: the same SQL for every run.
MONEY_HELD = tuple(sorted(MONEY_HELD_STATUSES))
MAX_DETAILS = 20


@dataclass(frozen=True, kw_only=True)
class InvariantResult:
    """One invariant: 0 violations means it holds; details name the difference in base units."""

    violations: int
    details: list[str] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return self.violations == 0


@dataclass(frozen=True, kw_only=True)
class InvariantReport:
    results: dict[str, InvariantResult]

    @property
    def holds(self) -> bool:
        return all(result.holds for result in self.results.values())

    def counts(self) -> dict[str, int]:
        return {name: result.violations for name, result in self.results.items()}

    def details(self) -> dict[str, list[str]]:
        return {name: list(result.details) for name, result in self.results.items()}


async def check_invariants(
    sessions: async_sessionmaker[AsyncSession],
    escrow: EscrowReader,
    *,
    received_grace: timedelta,
    from_block: int = 0,
    to_block: int | None = None,
    max_block_range: int = DEFAULT_MAX_BLOCK_RANGE,
) -> InvariantReport:
    """Check every money invariant against Postgres and the contract (logs from ``from_block``)."""
    client = escrow.contract.client
    head = to_block if to_block is not None else await client.block_number()
    chain_id = await client.chain_id()
    events = await read_escrow_events(
        client,
        escrow.address,
        chain_id=chain_id,
        from_block=from_block,
        to_block=head,
        max_block_range=max_block_range,
    )
    async with sessions() as session:
        known = await _known_bookings(session, {e.booking_id.lower() for e in events})
        orphans = orphan_flows(events, known)
        balance_result = await _escrow_balance(session, escrow, orphans, head)
        totals_result = await _settlement_totals(session, events, known, orphans)
        events_result = await _events_settled(session, received_grace)
    return InvariantReport(
        results={
            InvariantName.ESCROW_BALANCE.value: balance_result,
            InvariantName.SETTLEMENT_TOTALS.value: totals_result,
            InvariantName.EVENTS_SETTLED.value: events_result,
        }
    )


async def _known_bookings(session: AsyncSession, chain_ids: set[str]) -> dict[str, HeldTxs]:
    """Chain booking id -> what its row holds, for the ids that have a row."""
    if not chain_ids:
        return {}
    rows = await session.execute(
        select(
            Booking.blockchain_booking_id,
            Booking.id,
            # Compared in SQL: an unmanaged row's status may be one the mapping refuses to load.
            (Booking.status == DbStatus.CANCELLED).label("cancelled"),
            *(getattr(Booking, column) for column in HELD_TX_COLUMN.values()),
        ).where(func.lower(Booking.blockchain_booking_id).in_(sorted(chain_ids)))
    )
    return {
        str(row.blockchain_booking_id).lower(): HeldTxs.of_row(
            row, booking_id=str(row.id), cancelled=bool(row.cancelled)
        )
        for row in rows.all()
    }


async def _escrow_balance(
    session: AsyncSession,
    escrow: EscrowReader,
    orphan: OrphanFlows,
    block: int,
) -> InvariantResult:
    held_sum = (
        await session.execute(
            select(func.coalesce(func.sum(Booking.amount_units), 0)).where(
                Booking.status.in_(MONEY_HELD), Booking.managed
            )
        )
    ).scalar_one()
    held = int(held_sum or 0)
    orphans = sum(orphan.unrefunded.values())
    owed = await escrow.total_owed()
    balance = await escrow.usdc_balance_of(escrow.address)
    expected = held + owed + orphans
    if balance == expected:
        return InvariantResult(violations=0)
    return InvariantResult(
        violations=1,
        details=[
            f"escrow balance {balance} != held {held} + owed {owed} + orphans {orphans}"
            f" (difference {balance - expected}) at block {block}"
        ],
    )


def _released(event: ServiceCompleted | BookingCancelled) -> int:
    if isinstance(event, ServiceCompleted):
        return event.provider_amount + event.platform_fee + event.inviter_fee
    return (
        event.customer_amount + event.provider_amount + event.platform_amount + event.inviter_amount
    )


async def _recorded_per_booking(session: AsyncSession) -> dict[str, int]:
    recorded: dict[str, int] = defaultdict(int)
    queries = (
        select(ProviderEarning.booking_id, func.sum(ProviderEarning.amount_units))
        .where(ProviderEarning.reverted_at.is_(None))
        .group_by(ProviderEarning.booking_id),
        select(
            PlatformFee.booking_id,
            func.sum(PlatformFee.platform_amount_units + PlatformFee.inviter_amount_units),
        )
        .where(PlatformFee.reverted_at.is_(None))
        .group_by(PlatformFee.booking_id),
        select(
            Refund.booking_id,
            func.sum(
                Refund.customer_amount_units
                + Refund.provider_amount_units
                + Refund.platform_amount_units
                + Refund.inviter_amount_units
            ),
        )
        .where(Refund.reverted_at.is_(None))
        .group_by(Refund.booking_id),
    )
    for query in queries:
        for booking_id, total in (await session.execute(query)).all():
            recorded[str(booking_id)] += int(total or 0)
    return recorded


async def _settlement_totals(
    session: AsyncSession,
    events: list[BookingCreatedAndPaid | ServiceCompleted | BookingCancelled],
    known: dict[str, HeldTxs],
    orphan: OrphanFlows,
) -> InvariantResult:
    released: dict[str, int] = defaultdict(int)
    for event in events:
        if isinstance(event, BookingCreatedAndPaid) or event in orphan:
            continue  # orphans are refunded outside any booking row
        row = known.get(event.booking_id.lower())
        if row is not None:
            released[row.booking_id] += _released(event)
    recorded = await _recorded_per_booking(session)
    details: list[str] = []
    violations = 0
    for booking_id in sorted(released.keys() | recorded.keys()):
        on_chain, in_db = released.get(booking_id, 0), recorded.get(booking_id, 0)
        if on_chain != in_db:
            violations += 1
            if len(details) < MAX_DETAILS:
                details.append(
                    f"booking {booking_id}: released on-chain {on_chain}, recorded {in_db}"
                    f" (difference {on_chain - in_db})"
                )
    total_chain, total_db = sum(released.values()), sum(recorded.values())
    if total_chain != total_db:
        details.insert(0, f"total released on-chain {total_chain}, recorded {total_db}")
    return InvariantResult(violations=violations, details=details)


async def _events_settled(session: AsyncSession, received_grace: timedelta) -> InvariantResult:
    cutoff = datetime.now(UTC) - received_grace
    stale = (BlockchainEvent.status == BlockchainEventStatus.RECEIVED) & (
        BlockchainEvent.received_at < cutoff
    )
    unexplained = (BlockchainEvent.status == BlockchainEventStatus.FAILED) & (
        func.coalesce(BlockchainEvent.status_reason, "") == ""
    )
    rows = (
        await session.execute(
            select(
                BlockchainEvent.tx_hash,
                BlockchainEvent.log_index,
                BlockchainEvent.status,
                BlockchainEvent.event_type,
            )
            .where(stale | unexplained)
            .order_by(BlockchainEvent.block_number, BlockchainEvent.log_index)
        )
    ).all()
    details = [
        f"{event_type} {tx_hash}:{log_index} is {status} "
        + (
            "past the grace period"
            if status == BlockchainEventStatus.RECEIVED
            else "without reason"
        )
        for tx_hash, log_index, status, event_type in rows[:MAX_DETAILS]
    ]
    return InvariantResult(violations=len(rows), details=details)
