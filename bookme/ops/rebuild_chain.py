"""Payments the chain holds that neither Postgres nor Temporal knows after a rebuild.

Such a booking has no terms left anywhere (its workflow aged out of Temporal's retention and
its row out of the backup), so nothing can re-project it. Money still escrowed for it goes back
to the customer through the orphan refund workflow, the same one the listener starts for a
payment of an unknown booking; a settled one is only reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from activities.reconcile.logs import read_escrow_events
from chain.client import ChainClient
from chain.escrow import EscrowReader, OnChainBookingStatus
from chain.events import BookingCreatedAndPaid, DecodedEvent
from db.models import Booking
from workflows.client import OrphanClient
from workflows.event_codec import signal_from_event
from workflows.types import BookingPolicy


@dataclass(frozen=True, kw_only=True)
class ChainOnlyBooking:
    chain_booking_id: str
    on_chain: str
    action: str  # what the rebuild did about it


@dataclass(frozen=True, kw_only=True)
class ChainScan:
    """Where to read the escrow's payments and whom to hand an escrowed orphan to."""

    chain: ChainClient
    escrow: EscrowReader
    chain_id: int
    from_block: int
    policy: BookingPolicy
    task_queue: str

    async def events(self) -> list[DecodedEvent]:
        """Every escrow event from ``from_block`` to the head, in chain order."""
        return await read_escrow_events(
            self.chain,
            self.escrow.address,
            chain_id=self.chain_id,
            from_block=self.from_block,
            to_block=await self.chain.block_number(),
        )


async def _known(sessions: async_sessionmaker[AsyncSession], ids: set[str]) -> set[str]:
    async with sessions() as session:
        rows = await session.scalars(
            select(func.lower(Booking.blockchain_booking_id)).where(
                func.lower(Booking.blockchain_booking_id).in_(ids)
            )
        )
        return set(rows)


async def chain_only_bookings(
    scan: ChainScan,
    events: list[DecodedEvent],
    sessions: async_sessionmaker[AsyncSession],
    temporal: Client,
    orphan_workflows: set[str],
) -> list[ChainOnlyBooking]:
    """Every paid chain booking with no row and no workflow; escrowed ones get their refund."""
    payments = {e.booking_id.lower(): e for e in events if isinstance(e, BookingCreatedAndPaid)}
    unknown = set(payments) - await _known(sessions, set(payments))
    found: list[ChainOnlyBooking] = []
    for chain_booking_id in sorted(unknown):
        orphan = OrphanClient(temporal, chain_booking_id)
        if orphan.workflow_id in orphan_workflows:
            continue  # the orphan refund has it (and the rebuild re-projected its rows)
        on_chain = (await scan.escrow.get_booking(chain_booking_id)).status
        if on_chain is OnChainBookingStatus.PAID:
            await orphan.start(
                signal_from_event(payments[chain_booking_id]),
                policy=scan.policy,
                task_queue=scan.task_queue,
            )
            action = f"escrowed: refund started ({orphan.workflow_id})"
        else:
            action = "settled on chain: nothing held, reported only"
        found.append(
            ChainOnlyBooking(
                chain_booking_id=chain_booking_id, on_chain=on_chain.name, action=action
            )
        )
    return found
