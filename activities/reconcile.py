"""Reconcile activities: compare chain, Postgres and booking workflows, repair through the workflow.

Repairs never write around a booking workflow: a missing chain event is stored and signalled
through the listener's delivery path (`listener.delivery.Deliverer`), a drifted row is fixed by
the workflow's own ``resync`` update. Only a *closed* workflow, which can take no update, has its
final view (from the ``status`` query) written by the same resync write the update uses.

Findings about a booking are recorded in its audit trail (`booking_events`, kind
``reconcile_<kind>``, actor ``reconciler``, one row per run and kind); the run's report (workflow
result) lists every finding, including those without a booking (orphan event gaps).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement
from temporalio import activity
from temporalio.client import Client, RPCError, RPCStatusCode, WorkflowQueryFailedError

from activities.chain_events import signal_from_event
from activities.invariants import check_invariants
from activities.reconcile_logs import read_escrow_events
from activities.reconcile_metrics import ReconcileMetrics
from activities.reconcile_store import ResyncStore
from activities.reconcile_stuck import find_stuck
from bookme.settings import Settings
from chain.escrow import EscrowReader, OnChainBookingStatus
from chain.events import DecodedEvent
from db.models import BlockchainEvent, Booking, BookingEvent, ChainCursor
from db.statuses import BlockchainEventStatus
from db.statuses import BookingStatus as DbStatus
from workflows.booking import BookingWorkflow
from workflows.constants import BOOKING_WORKFLOW_NAME, booking_workflow_id
from workflows.reconcile_types import (
    RECONCILE_BEGIN,
    RECONCILE_BOOKINGS_PAGE,
    RECONCILE_EVENTS,
    RECONCILE_FINISH,
    RECONCILE_WORKFLOWS,
    BookingPageRequest,
    BookingResync,
    DivergenceKind,
    EventGapRequest,
    FinishRequest,
    FinishResult,
    PhaseResult,
    ReconcileAction,
    ReconcileBeginRequest,
    ReconcileFinding,
    ReconcileWindow,
    ResyncRequest,
)
from workflows.types import BookingStatus, BookingView, ChainEventSignal

if TYPE_CHECKING:
    # At run time listener.events is imported lazily: `python -m listener` imports this module
    # (via activities/__init__) while listener.delivery is still half-initialised.
    from listener.delivery import Deliverer
    from listener.events import ObservedEvent

log = structlog.get_logger(__name__)

ACTOR = "reconciler"
TERMINAL = (DbStatus.COMPLETED, DbStatus.CANCELLED, DbStatus.FAILED)
MONEY_HELD = frozenset({BookingStatus.PAID, BookingStatus.PENDING_COMPLETION,
                        BookingStatus.PENDING_CANCELLATION})  # fmt: skip
# The chain's final state -> the workflow statuses that agree with it.
AGREES = {
    OnChainBookingStatus.NONE: frozenset(
        {BookingStatus.PENDING_PAYMENT, BookingStatus.CANCELLED, BookingStatus.FAILED}
    ),
    OnChainBookingStatus.PAID: MONEY_HELD | {BookingStatus.FAILED},
    OnChainBookingStatus.COMPLETED: frozenset({BookingStatus.COMPLETED, BookingStatus.FAILED}),
    OnChainBookingStatus.CANCELLED: frozenset({BookingStatus.CANCELLED, BookingStatus.FAILED}),
}
MISSING_KIND = {
    OnChainBookingStatus.PAID: DivergenceKind.MISSING_PAYMENT,
    OnChainBookingStatus.COMPLETED: DivergenceKind.MISSING_COMPLETION,
    OnChainBookingStatus.CANCELLED: DivergenceKind.MISSING_CANCELLATION,
}
# Concurrent per-booking checks inside one page (each: a query, a view call, maybe a repair).
PAGE_CONCURRENCY = 16
WORKFLOW_BATCH = 200


@dataclass(frozen=True, kw_only=True)
class ReconcileConfig:
    """The reconciler's knobs (from Settings)."""

    chain_id: int
    confirmations: int
    interval: timedelta
    lookback_blocks: int
    from_block: int
    max_block_range: int
    received_grace: timedelta
    stuck_grace: timedelta
    payment_deadline: timedelta
    auto_complete_delay: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> ReconcileConfig:
        return cls(
            chain_id=settings.chain_id,
            confirmations=settings.confirmations,
            interval=timedelta(seconds=settings.reconcile_interval_seconds),
            lookback_blocks=settings.reconcile_event_lookback_blocks,
            from_block=settings.reconcile_from_block,
            max_block_range=settings.listener_max_block_range,
            received_grace=timedelta(seconds=settings.reconcile_received_grace_seconds),
            stuck_grace=timedelta(seconds=settings.reconcile_stuck_grace_seconds),
            payment_deadline=timedelta(seconds=settings.payment_deadline_seconds),
            auto_complete_delay=timedelta(seconds=settings.auto_complete_delay_seconds),
        )


def _observed(event: DecodedEvent) -> ObservedEvent:
    from listener.events import ObservedEvent, row_payload

    return ObservedEvent(
        signal=signal_from_event(event), contract=event.contract, payload=row_payload(event)
    )


def _heartbeat(*details: object) -> None:
    if activity.in_activity():
        activity.heartbeat(*details)


def _not_found(exc: RPCError) -> bool:
    return exc.status is RPCStatusCode.NOT_FOUND


class ReconcileActivities:
    """Reads the three views of each booking and repairs divergences through the workflow."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        temporal: Client,
        escrow: EscrowReader,
        deliverer: Deliverer,
        resync_store: ResyncStore,
        metrics: ReconcileMetrics,
        config: ReconcileConfig,
    ) -> None:
        self._sessions = sessions
        self._temporal = temporal
        self._escrow = escrow
        self._deliverer = deliverer
        self._resync_store = resync_store
        self._metrics = metrics
        self._config = config

    # --- begin: what this run covers -------------------------------------------------------

    @activity.defn(name=RECONCILE_BEGIN)
    async def begin(self, request: ReconcileBeginRequest) -> ReconcileWindow:
        """Count the bookings in scope and fix the block range (ending at the listener's checkpoint)."""
        started_at = datetime.now(UTC)
        # Twice the interval: a late or failed run leaves no booking unvisited.
        since = None if request.full else started_at - 2 * self._config.interval
        async with self._sessions() as session:
            total = (
                await session.execute(
                    select(func.count()).select_from(Booking).where(*self._in_scope(since))
                )
            ).scalar_one()
            cursor = (
                await session.execute(
                    select(ChainCursor.last_block_number).where(
                        ChainCursor.chain_id == self._config.chain_id,
                        ChainCursor.contract_address == self._escrow.address,
                    )
                )
            ).scalar_one_or_none()
        confirmed = await self._escrow.contract.client.block_number() - self._config.confirmations
        to_block = max(0, min(cursor, confirmed) if cursor is not None else confirmed)
        if request.full:
            from_block = self._config.from_block
        else:
            from_block = max(self._config.from_block, to_block - self._config.lookback_blocks + 1)
        return ReconcileWindow(
            run_id=request.run_id,
            started_at=started_at,
            since=since,
            total=int(total),
            from_block=from_block,
            to_block=to_block,
        )

    @staticmethod
    def _in_scope(since: datetime | None) -> list[ColumnElement[bool]]:
        scope: list[ColumnElement[bool]] = [Booking.is_legacy.is_(False)]
        if since is not None:
            scope.append(or_(Booking.status.not_in(TERMINAL), Booking.updated_at >= since))
        return scope

    # --- event gap check -------------------------------------------------------------------

    @activity.defn(name=RECONCILE_EVENTS)
    async def events(self, request: EventGapRequest) -> PhaseResult:
        """Contract logs of the range missing from `blockchain_events`, delivered like the listener would."""
        events = await read_escrow_events(
            self._escrow.contract.client,
            self._escrow.address,
            chain_id=self._config.chain_id,
            from_block=request.from_block,
            to_block=request.to_block,
            max_block_range=self._config.max_block_range,
            on_range=lambda start, end: _heartbeat("events", start, end),
        )
        settled = await self._settled_keys(request.from_block, request.to_block)
        missing = [_observed(e) for e in events if e.identity.key not in settled]
        if not missing:
            return PhaseResult(findings=[], scanned=len(events))
        bookings = await self._deliverer.bookings.resolve(
            e.signal.chain_booking_id for e in missing
        )
        views = await self._views({bookings[c] for c in bookings})
        await self._deliverer.deliver(missing)
        findings: list[ReconcileFinding] = []
        repaired: set[str] = set()
        already_applied: dict[str, list[ObservedEvent]] = {}
        for event in missing:
            cbid = event.signal.chain_booking_id.lower()
            booking_id = bookings.get(cbid)
            view = views.get(booking_id) if booking_id else None
            if view is not None and event.key in view.applied_event_keys:
                already_applied.setdefault(booking_id or "", []).append(event)
                detail = f"{event.signal.kind.value} row missing; the workflow had applied it"
                action = ReconcileAction.RESYNCED
            else:
                repaired.add(cbid)
                detail = f"{event.signal.kind.value} at block {event.block_number} never stored"
                action = ReconcileAction.SIGNALLED
            findings.append(
                ReconcileFinding(
                    kind=DivergenceKind.EVENT_GAP,
                    action=action,
                    detail=detail + ("" if booking_id else " (no booking: orphan path)"),
                    booking_id=booking_id,
                    tx_hash=event.signal.identity.tx_hash,
                    log_index=event.signal.identity.log_index,
                )
            )
        for booking_id in already_applied:
            await self._resync(booking_id, views[booking_id], "event row missing", request.run_id)
        await self._record(request.run_id, findings)
        return PhaseResult(
            findings=findings, scanned=len(events), repaired_chain_ids=sorted(repaired)
        )

    async def _settled_keys(self, from_block: int, to_block: int) -> set[str]:
        """Stored events that need nothing (a fresh RECEIVED row is still the listener's)."""
        fresh = datetime.now(UTC) - self._config.received_grace
        async with self._sessions() as session:
            rows = await session.execute(
                select(
                    BlockchainEvent.chain_id, BlockchainEvent.tx_hash, BlockchainEvent.log_index
                ).where(
                    BlockchainEvent.chain_id == self._config.chain_id,
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
            return {f"{chain}:{tx.lower()}:{index}" for chain, tx, index in rows}

    # --- bookings: chain vs workflow vs Postgres -------------------------------------------

    @activity.defn(name=RECONCILE_BOOKINGS_PAGE)
    async def bookings_page(self, request: BookingPageRequest) -> PhaseResult:
        """One keyset page of bookings in scope, each compared and repaired."""
        query = select(Booking.id, Booking.status, Booking.blockchain_booking_id).where(
            *self._in_scope(request.since)
        )
        if request.after_id is not None:
            query = query.where(Booking.id > uuid.UUID(request.after_id))
        async with self._sessions() as session:
            rows = (
                await session.execute(query.order_by(Booking.id).limit(request.page_size))
            ).all()
        repaired = set(request.repaired_chain_ids)
        limit = asyncio.Semaphore(PAGE_CONCURRENCY)
        findings: list[ReconcileFinding] = []

        async def check(booking_id: str, db_status: str, cbid: str) -> None:
            async with limit:
                findings.extend(
                    await self._check_booking(request.run_id, booking_id, db_status, cbid, repaired)
                )
                _heartbeat("bookings", booking_id)

        async with asyncio.TaskGroup() as tasks:
            for booking_id, status, cbid in rows:
                tasks.create_task(check(str(booking_id), str(status), str(cbid or "")))
        await self._record(request.run_id, findings)
        last = str(rows[-1][0]) if len(rows) == request.page_size else None
        return PhaseResult(findings=findings, scanned=len(rows), last_id=last)

    async def _check_booking(
        self, run_id: str, booking_id: str, db_status: str, cbid: str, repaired: set[str]
    ) -> list[ReconcileFinding]:
        view = await self._view(booking_id)
        if view is None:
            return [
                ReconcileFinding(
                    kind=DivergenceKind.WORKFLOW_MISSING,
                    action=ReconcileAction.REPORTED,
                    detail=f"no workflow {booking_workflow_id(booking_id)} (row {db_status})",
                    booking_id=booking_id,
                )
            ]
        onchain = await self._escrow.get_booking(cbid)
        if view.status not in AGREES[onchain.status] and cbid.lower() not in repaired:
            return [await self._chain_divergence(run_id, booking_id, view, onchain.status, cbid)]
        if db_status != view.status.value:
            # Re-read both: the workflow persists a transition just before it shows in the query.
            view = await self._view(booking_id) or view
            if await self._db_status(booking_id) != view.status.value:
                await self._resync(booking_id, view, f"row said {db_status}", run_id)
                return [
                    ReconcileFinding(
                        kind=DivergenceKind.DB_DRIFT,
                        action=ReconcileAction.RESYNCED,
                        detail=f"row {db_status}, workflow {view.status.value}",
                        booking_id=booking_id,
                    )
                ]
        return []

    async def _chain_divergence(
        self,
        run_id: str,
        booking_id: str,
        view: BookingView,
        onchain: OnChainBookingStatus,
        cbid: str,
    ) -> ReconcileFinding:
        kind = MISSING_KIND.get(onchain)
        detail = f"chain {onchain.name}, workflow {view.status.value}"
        applied = set(view.applied_event_keys) | set(view.pending_event_keys)
        if kind is not None:
            events = await self._booking_events(cbid, confirmations=self._config.confirmations)
            missing = [_observed(e) for e in events if e.identity.key not in applied]
            if missing:
                await self._deliverer.deliver(missing)
                return ReconcileFinding(
                    kind=kind,
                    action=ReconcileAction.SIGNALLED,
                    detail=f"{detail}: delivered {len(missing)} event(s)",
                    booking_id=booking_id,
                    tx_hash=missing[-1].signal.identity.tx_hash,
                    log_index=missing[-1].signal.identity.log_index,
                )
            detail += ": the confirmed logs hold nothing the workflow has not seen"
        return ReconcileFinding(
            kind=kind or DivergenceKind.CHAIN_CONFLICT,
            action=ReconcileAction.REPORTED,
            detail=detail,
            booking_id=booking_id,
        )

    # --- running workflows whose row says they are over ------------------------------------

    @activity.defn(name=RECONCILE_WORKFLOWS)
    async def workflows(self, request: EventGapRequest) -> PhaseResult:
        """Running booking workflows whose row is terminal (an edit no `updated_at` shows)."""
        query = f"WorkflowType = '{BOOKING_WORKFLOW_NAME}' AND ExecutionStatus = 'Running'"
        findings: list[ReconcileFinding] = []
        scanned = 0
        batch: list[str] = []
        async for execution in self._temporal.list_workflows(query):
            prefix = booking_workflow_id("")
            if execution.id.startswith(prefix):
                batch.append(execution.id.removeprefix(prefix))
            if len(batch) >= WORKFLOW_BATCH:
                findings += await self._check_running(request.run_id, batch)
                scanned += len(batch)
                batch = []
                _heartbeat("workflows", scanned)
        findings += await self._check_running(request.run_id, batch)
        scanned += len(batch)
        await self._record(request.run_id, findings)
        return PhaseResult(findings=findings, scanned=scanned)

    async def _check_running(self, run_id: str, booking_ids: list[str]) -> list[ReconcileFinding]:
        ids = []
        for booking_id in booking_ids:
            try:
                ids.append(uuid.UUID(booking_id))
            except ValueError:
                continue
        if not ids:
            return []
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Booking.id, Booking.status).where(
                        Booking.id.in_(ids), Booking.status.in_(TERMINAL)
                    )
                )
            ).all()
        findings: list[ReconcileFinding] = []
        for row_id, status in rows:
            booking_id = str(row_id)
            view = await self._view(booking_id)
            if view is None or view.status.value == str(status):
                continue
            await self._resync(booking_id, view, f"row said {status}", run_id)
            findings.append(
                ReconcileFinding(
                    kind=DivergenceKind.DB_DRIFT,
                    action=ReconcileAction.RESYNCED,
                    detail=f"row {status}, running workflow {view.status.value}",
                    booking_id=booking_id,
                )
            )
        return findings

    # --- finish: invariants and stuck bookings ---------------------------------------------

    @activity.defn(name=RECONCILE_FINISH)
    async def finish(self, request: FinishRequest) -> FinishResult:
        """Money invariants and stuck bookings, exported as metrics."""
        report = await check_invariants(
            self._sessions,
            self._escrow,
            received_grace=self._config.received_grace,
            from_block=self._config.from_block,
            max_block_range=self._config.max_block_range,
        )
        async with self._sessions() as session:
            stuck = await find_stuck(
                session,
                payment_deadline=self._config.payment_deadline,
                auto_complete_delay=self._config.auto_complete_delay,
                grace=self._config.stuck_grace,
            )
        findings = [
            ReconcileFinding(
                kind=DivergenceKind.STUCK,
                action=ReconcileAction.REPORTED,
                detail=f"{s.status} past its {s.deadline} deadline ({s.due_at.isoformat()})",
                booking_id=s.booking_id,
            )
            for s in stuck
        ]
        findings += await self._owed_findings()
        await self._record(request.run_id, findings)
        counts = report.counts()
        self._metrics.record_invariants(counts)
        self._metrics.stuck.set(len(stuck))
        self._metrics.last_run.set(datetime.now(UTC).timestamp())
        if not report.holds:
            log.error("reconcile_invariant_broken", invariants=counts, details=report.details())
        return FinishResult(
            findings=findings,
            invariants=counts,
            invariant_details=report.details(),
            stuck=[s.booking_id for s in stuck],
        )

    async def _owed_findings(self) -> list[ReconcileFinding]:
        """Blocked recipients' legs held as owed balances (reported: only they can withdraw)."""
        if await self._escrow.total_owed() == 0:
            return []
        async with self._sessions() as session:
            wallets: set[str] = set()
            for column in (
                Booking.customer_wallet,
                Booking.provider_wallet,
                Booking.inviter_wallet,
            ):
                rows = await session.execute(
                    select(column)
                    .distinct()
                    .where(column.is_not(None), Booking.status.in_(TERMINAL))
                )
                wallets.update(str(w) for w in rows.scalars())
        wallets.add(await self._escrow.treasury())
        findings = []
        for wallet in sorted(wallets, key=str.lower):
            owed = await self._escrow.owed_balance(wallet)
            if owed:
                findings.append(
                    ReconcileFinding(
                        kind=DivergenceKind.OWED_BALANCE,
                        action=ReconcileAction.REPORTED,
                        detail=f"{wallet} is owed {owed} base units (transfer refused)",
                    )
                )
        return findings

    # --- shared ----------------------------------------------------------------------------

    async def _view(self, booking_id: str) -> BookingView | None:
        handle = self._temporal.get_workflow_handle(booking_workflow_id(booking_id))
        try:
            return await handle.query(BookingWorkflow.status)
        except RPCError as exc:
            if _not_found(exc):
                return None
            raise
        except WorkflowQueryFailedError:
            return None

    async def _views(self, booking_ids: set[str]) -> dict[str, BookingView]:
        views: dict[str, BookingView] = {}
        for booking_id in sorted(booking_ids):
            view = await self._view(booking_id)
            if view is not None:
                views[booking_id] = view
        return views

    async def _db_status(self, booking_id: str) -> str | None:
        async with self._sessions() as session:
            status = (
                await session.execute(
                    select(Booking.status).where(Booking.id == uuid.UUID(booking_id))
                )
            ).scalar_one_or_none()
        return str(status) if status is not None else None

    async def _resync(self, booking_id: str, view: BookingView, why: str, run_id: str) -> None:
        """The workflow's ``resync`` update; a closed workflow's final view is written directly."""
        request = ResyncRequest(operator=ACTOR, reason=f"{why} (run {run_id})"[:200])
        handle = self._temporal.get_workflow_handle(booking_workflow_id(booking_id))
        try:
            # temporalio's stubs type an `async def` update's result as the coroutine itself.
            await handle.execute_update(BookingWorkflow.resync, request)  # type: ignore[unused-coroutine]
            return
        except RPCError as exc:
            if not _not_found(exc):
                raise
        log.info("reconcile_resync_closed_workflow", booking_id=booking_id)
        applied = await self._applied_events(booking_id, view)
        await self._resync_store.resync_booking(
            BookingResync(
                booking_id=booking_id,
                dedupe_key=f"{booking_id}:reconcile:{run_id}:resync",
                status=view.status,
                reason=view.reason,
                completion_tx_hash=view.completion_tx_hash,
                refund_tx_hash=view.refund_tx_hash,
                applied_events=applied,
                requested_by=ACTOR,
                request_reason=request.reason,
                occurred_at=datetime.now(UTC),
            )
        )

    async def _booking_events(self, cbid: str, *, confirmations: int) -> list[DecodedEvent]:
        """One booking's escrow events since ``reconcile_from_block``, in chain order."""
        client = self._escrow.contract.client
        return await read_escrow_events(
            client,
            self._escrow.address,
            chain_id=self._config.chain_id,
            from_block=self._config.from_block,
            to_block=await client.block_number() - confirmations,
            max_block_range=self._config.max_block_range,
            chain_booking_id=cbid,
        )

    async def _applied_events(self, booking_id: str, view: BookingView) -> list[ChainEventSignal]:
        """The closed workflow's applied events, rebuilt from the chain's logs (same identities)."""
        events = await self._booking_events(view.chain_booking_id, confirmations=0)
        applied = set(view.applied_event_keys)
        return [signal_from_event(e) for e in events if e.identity.key in applied]

    async def _record(self, run_id: str, findings: Sequence[ReconcileFinding]) -> None:
        """One audit row per booking, run and kind; findings without a booking are logged."""
        rows = []
        for finding in findings:
            log.warning(
                "reconcile_finding",
                kind=finding.kind.value,
                action=finding.action.value,
                booking_id=finding.booking_id,
                tx_hash=finding.tx_hash,
                detail=finding.detail,
            )
            self._metrics.divergences.labels(finding.kind.value, finding.action.value).inc()
            if finding.booking_id is None:
                continue
            rows.append(
                {
                    "booking_id": uuid.UUID(finding.booking_id),
                    "kind": f"reconcile_{finding.kind.value}",
                    "reason": finding.detail[:500],
                    "actor": ACTOR,
                    "tx_hash": finding.tx_hash,
                    "log_index": finding.log_index,
                    "dedupe_key": f"reconcile:{run_id}:{finding.kind.value}:{finding.tx_hash or ''}",
                    "details": {"action": finding.action.value, "run_id": run_id},
                }
            )
        if not rows:
            return
        async with self._sessions.begin() as session:
            await session.execute(
                insert(BookingEvent)
                .values(rows)
                .on_conflict_do_nothing(
                    index_elements=[BookingEvent.booking_id, BookingEvent.dedupe_key],
                    index_where=BookingEvent.dedupe_key.is_not(None),
                )
            )

    def activities(self) -> list[Callable[..., Awaitable[object]]]:
        return [self.begin, self.events, self.bookings_page, self.workflows, self.finish]
