"""The event gap check: contract logs of the range missing from `blockchain_events`.

A missing event is delivered as the listener would have (store, then signal). When the workflow
had applied it already (only the row is missing), the workflow's resync writes the row back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import or_, select

from activities.reconcile.audit import record_findings
from activities.reconcile.context import Reconcile, heartbeat
from activities.reconcile.logs import read_escrow_events
from activities.reconcile.repair import Repairs
from chain.event_key import event_key
from db.models import BlockchainEvent
from db.statuses import BlockchainEventStatus
from workflows.event_codec import signal_from_event
from workflows.reconcile_types import (
    DivergenceKind,
    EventGapRequest,
    PhaseResult,
    ReconcileAction,
    ReconcileFinding,
)
from workflows.types import BookingView, ChainEventSignal


@dataclass
class _Gaps:
    findings: list[ReconcileFinding] = field(default_factory=list)
    repaired: set[str] = field(default_factory=set)  # chain booking ids signalled
    resync: dict[str, None] = field(default_factory=dict)  # booking ids, in order


async def find_event_gaps(
    reconcile: Reconcile, repairs: Repairs, request: EventGapRequest
) -> PhaseResult:
    """Contract logs of the range missing from `blockchain_events`, delivered like the listener would."""
    config = reconcile.config
    events = await read_escrow_events(
        reconcile.escrow.contract.client,
        reconcile.escrow.address,
        chain_id=config.chain_id,
        from_block=request.from_block,
        to_block=request.to_block,
        max_block_range=config.max_block_range,
        on_range=lambda start, end: heartbeat("events", start, end),
    )
    settled = await _settled_keys(reconcile, request.from_block, request.to_block)
    missing = [e for e in events if e.identity.key not in settled]
    if not missing:
        return PhaseResult(findings=[], scanned=len(events))
    signals = [signal_from_event(e) for e in missing]
    bookings = await reconcile.delivery.resolve_bookings(s.chain_booking_id for s in signals)
    views = await repairs.views({bookings[c] for c in bookings})
    await reconcile.delivery.deliver_events(missing)
    gaps = _classify(signals, bookings, views)
    for booking_id in gaps.resync:
        await repairs.resync(booking_id, views[booking_id], "event row missing", request.run_id)
    await record_findings(reconcile, request.run_id, gaps.findings)
    return PhaseResult(
        findings=gaps.findings, scanned=len(events), repaired_chain_ids=sorted(gaps.repaired)
    )


def _classify(
    signals: list[ChainEventSignal], bookings: dict[str, str], views: dict[str, BookingView]
) -> _Gaps:
    """A finding per missing event: signalled, or (applied by its workflow) to be resynced."""
    gaps = _Gaps()
    for signal in signals:
        cbid = signal.chain_booking_id.lower()
        booking_id = bookings.get(cbid)
        view = views.get(booking_id) if booking_id else None
        if view is not None and signal.key in view.applied_event_keys:
            gaps.resync[booking_id or ""] = None
            detail = f"{signal.kind.value} row missing; the workflow had applied it"
            action = ReconcileAction.RESYNCED
        else:
            gaps.repaired.add(cbid)
            detail = f"{signal.kind.value} at block {signal.identity.block_number} never stored"
            action = ReconcileAction.SIGNALLED
        gaps.findings.append(
            ReconcileFinding(
                kind=DivergenceKind.EVENT_GAP,
                action=action,
                detail=detail + ("" if booking_id else " (no booking: orphan path)"),
                booking_id=booking_id,
                tx_hash=signal.identity.tx_hash,
                log_index=signal.identity.log_index,
            )
        )
    return gaps


async def _settled_keys(reconcile: Reconcile, from_block: int, to_block: int) -> set[str]:
    """Stored events that need nothing (a fresh RECEIVED row is still the listener's)."""
    fresh = datetime.now(UTC) - reconcile.config.received_grace
    async with reconcile.sessions() as session:
        rows = await session.execute(
            select(
                BlockchainEvent.chain_id, BlockchainEvent.tx_hash, BlockchainEvent.log_index
            ).where(
                BlockchainEvent.chain_id == reconcile.config.chain_id,
                BlockchainEvent.block_number.between(from_block, to_block),
                or_(
                    BlockchainEvent.status.in_(
                        (BlockchainEventStatus.PROCESSED, BlockchainEventStatus.FAILED)
                    ),
                    (BlockchainEvent.status == BlockchainEventStatus.RECEIVED)
                    & (BlockchainEvent.received_at >= fresh),
                ),
            )
        )
        return {event_key(chain, tx, index) for chain, tx, index in rows}
