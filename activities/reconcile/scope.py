"""What one run covers: the bookings in scope and the block range (ending at the checkpoint)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import ColumnExpressionArgument, func, or_, select

from activities.reconcile.agreement import TERMINAL
from activities.reconcile.context import Reconcile
from db.models import Booking, ChainCursor
from workflows.reconcile_types import ReconcileBeginRequest, ReconcileWindow


def in_scope(since: datetime | None) -> list[ColumnExpressionArgument[bool]]:
    """The bookings the service manages; on an incremental run, those open or changed since
    ``since`` (the marketplace's own rows are not the service's to reconcile)."""
    scope: list[ColumnExpressionArgument[bool]] = [Booking.managed]
    if since is not None:
        scope.append(or_(Booking.status.not_in(TERMINAL), Booking.updated_at >= since))
    return scope


async def begin_window(reconcile: Reconcile, request: ReconcileBeginRequest) -> ReconcileWindow:
    """Count the bookings in scope and fix the block range (ending at the listener's checkpoint)."""
    config = reconcile.config
    started_at = datetime.now(UTC)
    # Twice the interval: a late or failed run leaves no booking unvisited.
    since = None if request.full else started_at - 2 * config.interval
    async with reconcile.sessions() as session:
        total = (
            await session.execute(select(func.count()).select_from(Booking).where(*in_scope(since)))
        ).scalar_one()
        cursor = (
            await session.execute(
                select(ChainCursor.last_block_number).where(
                    ChainCursor.chain_id == config.chain_id,
                    ChainCursor.contract_address == reconcile.escrow.address,
                )
            )
        ).scalar_one_or_none()
    confirmed = await reconcile.escrow.contract.client.block_number() - config.confirmations
    to_block = max(0, min(cursor, confirmed) if cursor is not None else confirmed)
    if request.full:
        from_block = config.from_block
    else:
        from_block = max(config.from_block, to_block - config.lookback_blocks + 1)
    return ReconcileWindow(
        run_id=request.run_id,
        started_at=started_at,
        since=since,
        total=int(total),
        from_block=from_block,
        to_block=to_block,
    )
