"""Reconcile activities: compare chain, Postgres and booking workflows, repair through the workflow.

Repairs never write around a booking workflow: a missing chain event is stored and signalled
through the listener's delivery path (an `EventDelivery` that ``worker.py`` injects), a drifted
row is fixed by the workflow's own ``resync`` update (see ``repair``).

Findings about a booking are recorded in its audit trail (see ``audit``); the run's report
(workflow result) lists every finding, including those without a booking (orphan event gaps).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client

from activities.reconcile.booking_checks import check_bookings_page
from activities.reconcile.context import Reconcile, ReconcileConfig
from activities.reconcile.delivery import EventDelivery
from activities.reconcile.event_gaps import find_event_gaps
from activities.reconcile.finish import finish_run
from activities.reconcile.metrics import ReconcileMetrics
from activities.reconcile.repair import Repairs
from activities.reconcile.resync_store import ResyncStore
from activities.reconcile.running import check_running_workflows
from activities.reconcile.scope import begin_window
from chain.escrow import EscrowReader
from workflows.reconcile_types import (
    RECONCILE_BEGIN,
    RECONCILE_BOOKINGS_PAGE,
    RECONCILE_EVENTS,
    RECONCILE_FINISH,
    RECONCILE_WORKFLOWS,
    BookingPageRequest,
    EventGapRequest,
    FinishRequest,
    FinishResult,
    PhaseResult,
    ReconcileBeginRequest,
    ReconcileWindow,
)


class ReconcileActivities:
    """Reads the three views of each booking and repairs divergences through the workflow."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        temporal: Client,
        escrow: EscrowReader,
        delivery: EventDelivery,
        resync_store: ResyncStore,
        metrics: ReconcileMetrics,
        config: ReconcileConfig,
    ) -> None:
        self._reconcile = Reconcile(
            sessions=sessions,
            temporal=temporal,
            escrow=escrow,
            delivery=delivery,
            resync_store=resync_store,
            metrics=metrics,
            config=config,
        )
        self._repairs = Repairs(self._reconcile)

    @activity.defn(name=RECONCILE_BEGIN)
    async def begin(self, request: ReconcileBeginRequest) -> ReconcileWindow:
        """Count the bookings in scope and fix the block range (ending at the listener's checkpoint)."""
        return await begin_window(self._reconcile, request)

    @activity.defn(name=RECONCILE_EVENTS)
    async def events(self, request: EventGapRequest) -> PhaseResult:
        """Contract logs of the range missing from `blockchain_events`, delivered like the listener would."""
        return await find_event_gaps(self._reconcile, self._repairs, request)

    @activity.defn(name=RECONCILE_BOOKINGS_PAGE)
    async def bookings_page(self, request: BookingPageRequest) -> PhaseResult:
        """One keyset page of bookings in scope, each compared and repaired."""
        return await check_bookings_page(self._reconcile, self._repairs, request)

    @activity.defn(name=RECONCILE_WORKFLOWS)
    async def workflows(self, request: EventGapRequest) -> PhaseResult:
        """Running booking workflows whose row is terminal (an edit no `updated_at` shows)."""
        return await check_running_workflows(self._reconcile, self._repairs, request)

    @activity.defn(name=RECONCILE_FINISH)
    async def finish(self, request: FinishRequest) -> FinishResult:
        """Money invariants and stuck bookings, exported as metrics."""
        return await finish_run(self._reconcile, request)

    def activities(self) -> list[Callable[..., Awaitable[object]]]:
        return [self.begin, self.events, self.bookings_page, self.workflows, self.finish]
