"""The settlement legs of a booking's chain events: written once per event, marked on a reorg."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Booking
from db.settlement_models import PlatformFee, ProviderEarning, Refund
from workflows.types import ChainEventKind, ChainEventSignal, Settlement


async def record(
    session: AsyncSession,
    booking_id: uuid.UUID,
    event: ChainEventSignal,
    settlement: Settlement,
) -> None:
    """The event's legs (a completion's earning and fees, a cancellation's refund legs), keyed
    by its identity: the same event again changes nothing; a re-included one revives its rows."""
    where = {
        "chain_id": event.identity.chain_id,
        "tx_hash": event.identity.tx_hash.lower(),
        "log_index": event.identity.log_index,
    }
    identity = ["chain_id", "tx_hash", "log_index"]
    # The same event applied again after a reorg reverted it (re-included): live again.
    revive = {"reverted_at": None}
    if settlement.kind is ChainEventKind.COMPLETION and event.completion is not None:
        booking = (
            await session.execute(select(Booking).where(Booking.id == booking_id))
        ).scalar_one()
        await session.execute(
            insert(ProviderEarning)
            .values(
                booking_id=booking_id,
                provider_wallet=event.completion.provider,
                amount_units=settlement.provider_amount,
                recorded_at=func.now(),
                **where,
            )
            .on_conflict_do_update(index_elements=identity, set_=revive)
        )
        await session.execute(
            insert(PlatformFee)
            .values(
                booking_id=booking_id,
                platform_amount_units=settlement.platform_amount,
                inviter_amount_units=settlement.inviter_amount,
                inviter_wallet=booking.inviter_wallet,
                recorded_at=func.now(),
                **where,
            )
            .on_conflict_do_update(index_elements=identity, set_=revive)
        )
    elif settlement.kind is ChainEventKind.CANCELLATION:
        await session.execute(
            insert(Refund)
            .values(
                booking_id=booking_id,
                customer_amount_units=settlement.customer_amount,
                provider_amount_units=settlement.provider_amount,
                platform_amount_units=settlement.platform_amount,
                inviter_amount_units=settlement.inviter_amount,
                emergency=settlement.emergency,
                recorded_at=func.now(),
                **where,
            )
            .on_conflict_do_update(index_elements=identity, set_=revive)
        )


async def revert(session: AsyncSession, event: ChainEventSignal) -> None:
    """Mark the legs of a reorged-away event reverted (kept, not deleted: the audit needs them)."""
    for table in (ProviderEarning, PlatformFee, Refund):
        await session.execute(
            update(table)
            .where(
                table.chain_id == event.identity.chain_id,
                table.tx_hash == event.identity.tx_hash.lower(),
                table.log_index == event.identity.log_index,
                table.reverted_at.is_(None),
            )
            .values(reverted_at=func.now())
        )
