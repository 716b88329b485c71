"""``BookingWorkflow``: the Temporal shell of one booking's escrow state machine.

Shape: signals only append to an inbox; the main loop is the single place that applies chain
events and fires timers, under ``self._lock``. Updates that await (signing, persisting, sending)
take the same lock, so no two state changes interleave. Each state change is persisted by the
``apply_transition`` activity before it becomes visible in memory, search attributes and details.

The transitions, who may do what, and how long a settled booking stays open are set out in
the package docstring (``workflows/booking/__init__.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from chain.reason_codes import OnChainReason
    from workflows import constants as c
    from workflows import search_attributes as sa
    from workflows.audit import AuditAction as A
    from workflows.booking import authorizations, guards, repairs, timers, unpaid, visibility
    from workflows.booking import recording as rec
    from workflows.booking.chain_events import ChainEventApplier
    from workflows.booking.relay import RelayedPaymentUpdates
    from workflows.booking.sightings import Sightings
    from workflows.booking.state import BookingState, Window
    from workflows.booking.versions import applies as patch_applies
    from workflows.booking.watch import Watch
    from workflows.cancellation_policy import CancellationPolicy
    from workflows.types import (
        AuthorizePaymentRequest,
        BookingInput,
        BookingStatus,
        BookingView,
        CancellationRequest,
        CancellationResult,
        ChainEventSignal,
        EmergencyCancelRequest,
        EmergencyCancelResult,
        EventOutcome,
        PartyRole,
        PaymentAuthorization,
        PaymentSighting,
        RecordedBooking,
        RedriveRequest,
        RedriveResult,
        ReportTransactionRequest,
        ResyncRequest,
        ResyncResult,
        RowTransaction,
        Settlement,
        StoredBooking,
        TransactionKind,
        TransactionReport,
        TransitionRecord,
    )

S = BookingStatus
CUSTOMER = PartyRole.CUSTOMER


@dataclass(frozen=True)
class _Inbound:
    """A signal waiting for the main loop: a chain event, or the revert of one."""

    event: ChainEventSignal
    revert: bool = False


@workflow.defn(name=c.BOOKING_WORKFLOW_NAME)
class BookingWorkflow(RelayedPaymentUpdates):
    @workflow.init
    def __init__(self, booking: BookingInput) -> None:
        self._booking = booking
        self._policy = booking.policy
        self._cancellation_policy = CancellationPolicy.from_booking_policy(booking.policy)
        self._state = BookingState.new(booking, workflow.now())
        self._events = ChainEventApplier(booking, self._state, self)
        self._watch = Watch(booking, self._state, self, self._events)
        self._sightings = Sightings(booking, self._state, self)
        self._lock = asyncio.Lock()
        self._inbox: list[_Inbound] = []
        self._timers_version = 0
        self._stored: StoredBooking | None = None  # the row's timestamps (None: refused)

    # --- run -------------------------------------------------------------------------------

    @workflow.run
    async def run(self, booking: BookingInput) -> BookingView:
        async with self._lock:
            try:
                self._stored = await rec.write(c.RECORD_BOOKING, booking, StoredBooking)
            except (ActivityError, ApplicationError) as err:
                # A local activity's failure arrives as the ApplicationError itself.
                rec.unrecordable(self._state, err)
            workflow.upsert_search_attributes(
                visibility.search_attributes(booking, self._state.status)
            )
            self.publish_details()
            self._state.recorded = True
        while not timers.finished(self._state):
            await self._wait_for_work()
            async with self._lock:
                await self._drain_inbox()
                await self._watch.fire_due_timers()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    async def _wait_for_work(self) -> None:
        seen = self._timers_version
        due = timers.next_due(self._state)

        def ready() -> bool:
            return bool(self._inbox) or self._timers_version != seen or timers.finished(self._state)

        if due is None:
            await workflow.wait_condition(ready)
            return
        delay = (due - workflow.now()).total_seconds()
        if delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(ready, timeout=delay)

    def bump_timers(self) -> None:
        self._timers_version += 1

    # --- signals (listener) ----------------------------------------------------------------

    @workflow.signal(name="payment_confirmed")
    def payment_confirmed(self, event: ChainEventSignal) -> None:
        self._inbox.append(_Inbound(event))

    @workflow.signal(name="service_completed")
    def service_completed(self, event: ChainEventSignal) -> None:
        self._inbox.append(_Inbound(event))

    @workflow.signal(name="booking_cancelled")
    def booking_cancelled(self, event: ChainEventSignal) -> None:
        self._inbox.append(_Inbound(event))

    @workflow.signal(name="chain_event_reverted")
    def chain_event_reverted(self, event: ChainEventSignal) -> None:
        self._inbox.append(_Inbound(event, revert=True))

    @workflow.signal(name="payment_seen")
    async def payment_seen(self, sighting: PaymentSighting) -> None:
        """A payment in a block not yet confirmed (or gone again): shown, never applied."""
        await workflow.wait_condition(lambda: self._state.recorded)
        async with self._lock:
            await self._sightings.apply(sighting)

    async def _drain_inbox(self) -> None:
        while self._inbox:
            inbound = self._inbox.pop(0)
            if inbound.revert:
                await self._events.revert(inbound.event)
            else:
                await self._events.accept(inbound.event, source="push")

    # --- query -----------------------------------------------------------------------------

    @workflow.query(name="status")
    def status(self) -> BookingView:
        return self._sightings.view(self._state.to_view(self._booking))

    # --- updates (API) --------------------------------------------------------------------

    @workflow.update(name="recorded")
    async def recorded(self) -> RecordedBooking:
        """Creation (update-with-start): the booking once its row is written, or refused."""
        await workflow.wait_condition(lambda: self._state.recorded)
        return rec.answer(self._booking, self._state, self._stored)

    # --- updates (API): guards in validators and again in handlers (the state may have moved
    # while the update waited for the lock) ------------------------------------------------

    @workflow.update(name="authorize_payment")
    async def authorize_payment(self, request: AuthorizePaymentRequest) -> PaymentAuthorization:
        state = self._state
        await workflow.wait_condition(lambda: state.recorded)
        async with self._lock:
            guards.check_authorize(state, self._booking, request, workflow.now())
            reusable = guards.reusable_payment_auth(state, workflow.now())
            guards.spend(state, CUSTOMER, changed=reusable is None)
            if reusable is not None:
                return reusable
            auth = await authorizations.sign_payment(self._booking, state, workflow.now())
            state.payment.current = auth
            self.open_window(TransactionKind.PAYMENT, None)
            return auth

    @authorize_payment.validator
    def _validate_authorize_payment(self, request: AuthorizePaymentRequest) -> None:
        now = workflow.now()
        guards.check_authorize(self._state, self._booking, request, now)
        reusable = guards.reusable_payment_auth(self._state, now)
        guards.check_budget(self._state, CUSTOMER, changes=reusable is None)

    @workflow.update(name="report_transaction")
    async def report_transaction(self, request: ReportTransactionRequest) -> TransactionReport:
        state = self._state
        await workflow.wait_condition(lambda: state.recorded)
        async with self._lock:
            # Recorded histories from before the trust boundary hold reports with no caller.
            caller = patch_applies(c.PATCH_TRUST_BOUNDARY)
            guards.check_report(state, self._booking, request, workflow.now(), caller=caller)
            party = guards.reporter(request)
            if guards.tx_already_applied(state, request.tx_hash):
                # The poll (or the listener) got there first: acknowledge, nothing to watch.
                guards.spend(state, party, changed=False)
                return TransactionReport(
                    tx_hash=request.tx_hash, kind=request.kind, monitoring_until=workflow.now()
                )
            guards.spend(state, party, changed=True)
            reports = state.budgets.reports
            reports[party.value] = reports.get(party.value, 0) + 1
            # Since the trust-boundary patch a report only opens a window: the status moves
            # when the chain says so, so a made-up hash changes nothing.
            if (
                request.kind is TransactionKind.COMPLETION
                and state.status is S.PAID
                and not patch_applies(c.PATCH_TRUST_BOUNDARY)
            ):
                state.auto_complete.completion_tx = request.tx_hash
                await self.transition(
                    S.PENDING_COMPLETION,
                    A.COMPLETION_REPORTED,
                    sent=RowTransaction.completion(request.tx_hash),
                )
            window = self.open_window(request.kind, request.tx_hash)
            return TransactionReport(
                tx_hash=request.tx_hash, kind=request.kind, monitoring_until=window.until
            )

    @report_transaction.validator
    def _validate_report_transaction(self, request: ReportTransactionRequest) -> None:
        state = self._state
        guards.check_report(state, self._booking, request, workflow.now(), caller=True)
        changes = not guards.tx_already_applied(state, request.tx_hash)
        guards.check_budget(state, guards.reporter(request), changes=changes)

    @workflow.update(name="request_cancellation")
    async def request_cancellation(self, request: CancellationRequest) -> CancellationResult:
        state = self._state
        await workflow.wait_condition(lambda: state.recorded)
        async with self._lock:
            guards.check_cancellation(state, self._booking, request, now := workflow.now())
            reason = f"{request.role.value}: {request.reason}"
            if state.status is S.PENDING_PAYMENT:
                answer = await unpaid.cancel(state, self, self._watch, request.role, reason)
                if answer is not None:
                    return answer
                # The chain showed it paid: judged afresh as a paid cancellation.
                guards.check_cancellation(state, self._booking, request, now := workflow.now())
            reusable = guards.reusable_cancel_auth(state, request.role, now)
            guards.spend(state, request.role, changed=reusable is None)
            if reusable is not None:
                return CancellationResult(status=state.status, authorization=reusable)
            auth = await authorizations.sign_cancellation(
                self._booking, state, self._cancellation_policy, request.role, now
            )
            state.cancellation.current = auth
            state.cancellation.check_at = auth.expires_at + timedelta(
                seconds=self._policy.poll_interval_seconds
            )
            if state.status is not S.PENDING_CANCELLATION:
                await self.transition(S.PENDING_CANCELLATION, A.CANCELLATION_AUTHORIZED, reason)
            self.open_window(TransactionKind.CANCELLATION, None)
            return CancellationResult(status=state.status, authorization=auth)

    @request_cancellation.validator
    def _validate_request_cancellation(self, request: CancellationRequest) -> None:
        now = workflow.now()
        guards.check_cancellation(self._state, self._booking, request, now)
        changes = guards.cancellation_changes(self._state, request, now)
        guards.check_budget(self._state, request.role, changes=changes)

    @workflow.update(name="emergency_cancel")
    async def emergency_cancel(self, request: EmergencyCancelRequest) -> EmergencyCancelResult:
        state = self._state
        await workflow.wait_condition(lambda: state.recorded)
        async with self._lock:
            guards.check_emergency(state, request)
            if state.refund.sent:
                return EmergencyCancelResult(status=state.status, tx_hash=state.refund.tx)
            reason = f"emergency by {request.operator}: {request.reason}"
            state.cancellation.check_at = None
            tx_hash = await self.send_refund(OnChainReason.EMERGENCY_REFUND)
            next_status = S.FAILED if state.status is S.FAILED else S.PENDING_CANCELLATION
            await self.transition(
                next_status,
                A.EMERGENCY_CANCEL_SENT,
                reason,
                tx_hash=tx_hash,
                sent=None if tx_hash is None else RowTransaction.cancellation(tx_hash),
            )
            return EmergencyCancelResult(status=state.status, tx_hash=tx_hash)

    @emergency_cancel.validator
    def _validate_emergency_cancel(self, request: EmergencyCancelRequest) -> None:
        guards.check_emergency(self._state, request)

    @workflow.update(name="resync")
    async def resync(self, request: ResyncRequest) -> ResyncResult:
        """Reconciler/operator: write this workflow's view over a row edited behind its back."""
        state = self._state
        await workflow.wait_condition(lambda: state.recorded)
        async with self._lock:
            guards.check_operator(request.operator, request.reason)
            return await repairs.resync(self._booking, state, request)

    @resync.validator
    def _validate_resync(self, request: ResyncRequest) -> None:
        guards.check_operator(request.operator, request.reason)

    @workflow.update(name="redrive")
    async def redrive(self, request: RedriveRequest) -> RedriveResult:
        """Operator: for a FAILED booking, apply what the chain says, else retry the refund."""
        state = self._state
        await workflow.wait_condition(lambda: state.recorded)
        async with self._lock:
            guards.check_redrive(state, request.operator, request.reason)
            return await repairs.redrive(state, self, self._watch, request)

    @redrive.validator
    def _validate_redrive(self, request: RedriveRequest) -> None:
        guards.check_redrive(self._state, request.operator, request.reason)

    # --- effects: what the event rules and the watch may do besides changing state -----

    def open_window(self, purpose: TransactionKind, tx_hash: str | None) -> Window:
        window = timers.open_window(self._state, self._policy, purpose, tx_hash, workflow.now())
        self.bump_timers()
        return window

    def close_window(self) -> None:
        if self._state.window is not None:
            self._state.window = None
            self.bump_timers()

    async def send_refund(self, reason: OnChainReason) -> str | None:
        return await self._watch.send_refund(reason)

    # --- persistence and visibility --------------------------------------------------------

    async def transition(
        self,
        to: BookingStatus,
        action: A,
        reason: str | None = None,
        *,
        event: ChainEventSignal | None = None,
        settlement: Settlement | None = None,
        tx_hash: str | None = None,
        sent: RowTransaction | None = None,
        event_outcome: EventOutcome | None = EventOutcome.PROCESSED,
    ) -> None:
        """Persist one audited change, then make it visible (memory, search attributes, UI).

        ``sent`` names a transaction this booking sent (or was told of) that the row keeps in
        its completion or cancellation column; the store writes what it is told.
        """
        state = self._state
        state.seq += 1
        now = workflow.now()
        await rec.write(
            c.APPLY_TRANSITION,
            TransitionRecord(
                booking_id=self._booking.booking_id,
                dedupe_key=f"{self._booking.booking_id}:{state.seq}:{action}",
                from_status=state.status,
                to_status=to,
                action=action,
                reason=reason,
                event=event,
                event_outcome=event_outcome if event is not None else None,
                settlement=settlement,
                tx_hash=tx_hash if sent is None else sent.tx_hash,
                sent=sent,
                occurred_at=now,
            ),
        )
        state.updated_at = now
        if to is state.status:
            return
        state.status = to
        state.reason = reason
        workflow.upsert_search_attributes([sa.BOOKING_STATUS.value_set(to.value)])
        self.publish_details()
        self.bump_timers()

    def publish_details(self) -> None:
        workflow.set_current_details(visibility.details(self._booking, self._state))
