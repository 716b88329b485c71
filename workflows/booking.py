"""``BookingWorkflow``: one durable workflow per booking, owning its escrow state machine.

Shape: signals only append to an inbox; the main loop is the single place that applies chain
events and fires timers, under ``self._lock``. Updates that await (signing, persisting, sending)
take the same lock, so no two state changes interleave. Each state change is persisted by the
``apply_transition`` activity before it becomes visible in memory, search attributes and details.

Transitions (action names are what ``booking_events`` records):

    PENDING_PAYMENT      --payment_confirmed-------------------> PAID
    PENDING_PAYMENT      --payment_timeout (deadline)----------> CANCELLED
    PENDING_PAYMENT      --cancelled_unpaid (request; when a payment authorization is still
                           valid, at its expiry: cancellation_requested is recorded first)--> CANCELLED
    PAID                 --auto_complete_sent (the operator's own transaction)--> PENDING_COMPLETION
    PENDING_COMPLETION   --auto_complete_sent (a reported completion never landed)--> same
    PAID|PENDING_*       --service_completed-------------------> COMPLETED   (+ earnings, fees)
    PAID|PENDING_CANC.   --cancellation_authorized-------------> PENDING_CANCELLATION
    PAID|PENDING_COMPL.  --emergency_cancel_sent---------------> PENDING_CANCELLATION
    PENDING_CANCELLATION --cancellation_expired----------------> PAID
    PENDING_CANCELLATION --refund_reverted (emergency tx reverted)--> PAID
    PENDING_COMPLETION   --completion_reverted (tx reverted)---> PAID
    PAID|PENDING_*       --booking_cancelled-------------------> CANCELLED   (+ refund legs)
    PAID|PENDING_*       --payment_reorged (reorg)-------------> PENDING_PAYMENT
    COMPLETED|CANCELLED  --settlement_reorged (reorg)----------> PAID (or PENDING_CANCELLATION
                           and the refund re-sent, when it was an emergency refund)
    FAILED (settled)     --settlement_reorged (reorg)----------> FAILED, refund owed and re-sent
    PENDING_PAYMENT      --contradiction (payment fields differ)--> FAILED + emergency refund
    PAID|PENDING_*       --contradiction (settlement differs)--> FAILED (legs recorded as mined)
    CANCELLED (unpaid)   --contradiction (payment after close)--> FAILED + emergency refund
    FAILED (refund owed) --refund_recorded / completed_while_failed--> FAILED (settled, ends)

A booking settled by a chain event stays open for ``settlement_finality_seconds`` (policy)
so a reorg that removes the settlement still reaches it; after that the listener records the
revert on the event row and reconciliation compares the booking with the chain.

Audit-only records (status unchanged): event_rejected, event_reverted, transaction_reverted,
auto_complete_failed, refund_failed, emergency_cancel_sent (when already FAILED),
cancellation_requested.

Who may do what: a reported transaction never changes the status (only the chain does), and
only the party who can send it may report it. Budgets are per party (customer, provider), so
no party can spend another's; operator updates are never refused by a budget. Histories
recorded before these rules replay through ``workflow.patched("trust-boundary")``.

History bound (events; measured on the recorded histories in tests/workflows/histories):
one poll costs ~12 events (timer 2, activity 3, two workflow tasks 6, plus the odd upsert), so
a monitoring window that finds nothing costs ~190 (16 polls; "window ends quietly": 202 events
in all). Polling happens only inside windows, and windows are opened by bounded things:
payment authorizations (8), reported txs (8), cancellation authorizations (4), auto-complete
attempts (3), refunds (operator-driven, each after a revert or a redrive) and reorg reverts
(one per revert signal). Worst case with every window run out separately: ~25 x 190 ~= 4,800
events; party updates add <= 2 parties x (40 changes + 100 repeats) x ~6 = 1,680; operator
updates are unbudgeted but trusted (and a repeat of an emergency refund is ~2 events);
status transitions and audit records (rejected events capped at 20) < 500. So < 8,000 events (about 1-2 KB each), well inside Temporal's 50k-event / 50 MB limits,
and no continue-as-new is needed. An RPC outage at a deadline adds ~12 events per re-check
with doubling backoff capped at 1 h (~25 a day). Measured: happy path 72 events; pay + late
cancellation 61; payment deadline 30; the largest recorded path 265.
Behaviour changes to this file go through ``workflow.patched`` and the replay test.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from chain.reason_codes import OnChainReason, cancellation_reason
    from workflows import constants as c
    from workflows import search_attributes as sa
    from workflows.cancellation_policy import CancellationPolicy
    from workflows.errors import InvalidRequest, LimitReached, WrongCaller, WrongState
    from workflows.event_checks import (
        foreign_reason,
        mismatch_reason,
        same_wallet,
        settlement_legs,
    )
    from workflows.reconcile_types import (
        RESYNC_BOOKING,
        BookingResync,
        RedriveRequest,
        RedriveResult,
        ResyncRequest,
        ResyncResult,
    )
    from workflows.summary import booking_summary
    from workflows.types import (
        AuthorizePaymentRequest,
        BookingInput,
        BookingStatus,
        BookingView,
        CancellationAuthorization,
        CancellationRequest,
        CancellationResult,
        CancellationRole,
        CancellationSplit,
        ChainEventKind,
        ChainEventSignal,
        ChainObservation,
        EmergencyCancelRequest,
        EmergencyCancelResult,
        EventOutcome,
        ObserveRequest,
        OnChainStatus,
        OperatorTxRequest,
        OperatorTxResult,
        PaymentAuthorization,
        ReportTransactionRequest,
        Settlement,
        SignCancellationRequest,
        SignPaymentRequest,
        TransactionKind,
        TransactionReport,
        TransitionRecord,
        TxStatus,
    )

S = BookingStatus
TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")
MAX_REASON_LENGTH = 200
MAX_BACKOFF = timedelta(hours=1)

# Which statuses a reported transaction of each kind makes sense in.
REPORTABLE = {
    TransactionKind.PAYMENT: frozenset({S.PENDING_PAYMENT}),
    TransactionKind.COMPLETION: frozenset({S.PAID, S.PENDING_COMPLETION, S.PENDING_CANCELLATION}),
    TransactionKind.CANCELLATION: frozenset({S.PAID, S.PENDING_CANCELLATION}),
}
MONEY_HELD = frozenset({S.PAID, S.PENDING_COMPLETION, S.PENDING_CANCELLATION})


@dataclass(kw_only=True)
class _Window:
    """An open monitoring window: push-only until ``next_poll_at``, then polling until ``until``."""

    purpose: TransactionKind
    tx_hash: str | None
    until: datetime
    next_poll_at: datetime
    found: bool = False


@workflow.defn(name=c.BOOKING_WORKFLOW_NAME)
class BookingWorkflow:
    @workflow.init
    def __init__(self, booking: BookingInput) -> None:
        self._booking = booking
        self._policy = booking.policy
        self._cancellation_policy = CancellationPolicy.from_booking_policy(booking.policy)
        self._status = S.PENDING_PAYMENT
        self._reason: str | None = None
        self._lock = asyncio.Lock()
        self._recorded = False  # updates wait for the booking row their activities refer to
        self._inbox: list[tuple[bool, ChainEventSignal]] = []  # (is_revert, event)
        self._applied: dict[str, ChainEventSignal] = {}
        self._buffered: list[ChainEventSignal] = []
        self._rejected = 0
        self._seq = 0
        # Per party (customer/provider): updates that changed something, and repeats that
        # did not. Operators have no budget.
        self._changes: dict[str, int] = {}
        self._repeats: dict[str, int] = {}
        self._payment_auth: PaymentAuthorization | None = None
        self._payment_auths = 0
        self._cancel_auth: CancellationAuthorization | None = None
        self._cancel_splits: list[CancellationSplit] = []
        self._cancel_auths_by: dict[str, int] = {}  # per requesting role
        self._cancel_check_at: datetime | None = None
        self._unpaid_cancel_reason: str | None = None  # cancel asked while an auth is live
        self._reports: dict[str, int] = {}
        self._window: _Window | None = None
        self._release_at = booking.scheduled_at + timedelta(
            seconds=booking.policy.auto_complete_delay_seconds
        )
        self._auto_complete_at: datetime | None = self._release_at + c.AUTO_COMPLETE_MARGIN
        self._auto_complete_attempts = 0
        self._auto_complete_sent = False
        self._completion_tx: str | None = None
        self._refund_sent = False
        self._refund_tx: str | None = None  # None with _refund_sent: already final on chain
        self._refund_outstanding = False
        self._close_check_at: datetime | None = None
        self._final_at: datetime | None = None  # settled: still listening for reorgs until then
        self._backoff_steps = 0
        self._timers_version = 0
        self._updated_at = workflow.now()
        self._payment_deadline = self._updated_at + timedelta(
            seconds=booking.policy.payment_deadline_seconds
        )

    # --- run -------------------------------------------------------------------------------

    @workflow.run
    async def run(self, booking: BookingInput) -> BookingView:
        async with self._lock:
            try:
                await self._write(c.RECORD_BOOKING, booking)
            except (ActivityError, ApplicationError) as err:
                # A local activity's failure arrives as the ApplicationError itself.
                self._unrecordable(err)
            workflow.upsert_search_attributes(
                [
                    sa.BOOKING_ID.value_set(booking.booking_id),
                    sa.CHAIN_BOOKING_ID.value_set(booking.chain_booking_id),
                    sa.CUSTOMER_WALLET.value_set(booking.customer_wallet.lower()),
                    sa.PROVIDER_WALLET.value_set(booking.provider_wallet.lower()),
                    sa.AMOUNT_UNITS.value_set(booking.amount_units),
                    sa.SCHEDULED_AT.value_set(booking.scheduled_at),
                    sa.BOOKING_STATUS.value_set(self._status.value),
                ]
            )
            self._publish_details()
            self._recorded = True
        while not self._finished():
            await self._wait_for_work()
            async with self._lock:
                await self._drain_inbox()
                await self._fire_due_timers()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    def _unrecordable(self, err: ActivityError | ApplicationError) -> None:
        """Postgres refused the booking for good (poison input): it ends FAILED, with the reason.

        Nothing was signed or held, so nothing is owed; the outcome lives in the workflow's
        result, status search attribute and summary, since there is no row to write it to.
        """
        self._status = S.FAILED
        cause = err.cause if isinstance(err, ActivityError) and err.cause else err
        self._reason = f"the booking could not be stored: {cause}"[:MAX_REASON_LENGTH]
        workflow.logger.error("booking refused by Postgres", extra={"reason": self._reason})

    def _finished(self) -> bool:
        if self._close_check_at is not None or self._final_at is not None:
            return False
        if self._status in (S.COMPLETED, S.CANCELLED):
            return True
        return self._status is S.FAILED and not self._refund_outstanding

    async def _wait_for_work(self) -> None:
        seen = self._timers_version
        due = self._next_due()

        def ready() -> bool:
            return bool(self._inbox) or self._timers_version != seen or self._finished()

        if due is None:
            await workflow.wait_condition(ready)
            return
        delay = (due - workflow.now()).total_seconds()
        if delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(ready, timeout=delay)

    def _next_due(self) -> datetime | None:
        candidates: list[datetime] = []
        if self._window is not None:
            candidates.append(self._window.next_poll_at)
        if self._status is S.PENDING_PAYMENT:
            candidates.append(self._payment_deadline)
        if self._status is S.PENDING_CANCELLATION and self._cancel_check_at is not None:
            candidates.append(self._cancel_check_at)
        if self._auto_complete_due_at() is not None:
            candidates.append(self._auto_complete_at)  # type: ignore[arg-type]
        if self._close_check_at is not None:
            candidates.append(self._close_check_at)
        if self._final_at is not None:
            candidates.append(self._final_at)
        return min(candidates) if candidates else None

    def _auto_complete_due_at(self) -> datetime | None:
        # Also in PENDING_COMPLETION from a *reported* completion: a report that never lands
        # must not block the release (the sender reads the chain first, so it cannot double up).
        if (
            self._status in (S.PAID, S.PENDING_COMPLETION)
            and not self._auto_complete_sent
            and not self._refund_sent
            and self._auto_complete_attempts < c.MAX_AUTO_COMPLETE_ATTEMPTS
        ):
            return self._auto_complete_at
        return None

    def _bump_timers(self) -> None:
        self._timers_version += 1

    # --- signals (listener) ----------------------------------------------------------------

    @workflow.signal(name="payment_confirmed")
    def payment_confirmed(self, event: ChainEventSignal) -> None:
        self._inbox.append((False, event))

    @workflow.signal(name="service_completed")
    def service_completed(self, event: ChainEventSignal) -> None:
        self._inbox.append((False, event))

    @workflow.signal(name="booking_cancelled")
    def booking_cancelled(self, event: ChainEventSignal) -> None:
        self._inbox.append((False, event))

    @workflow.signal(name="chain_event_reverted")
    def chain_event_reverted(self, event: ChainEventSignal) -> None:
        self._inbox.append((True, event))

    async def _drain_inbox(self) -> None:
        while self._inbox:
            is_revert, event = self._inbox.pop(0)
            if is_revert:
                await self._revert(event)
            else:
                await self._accept(event, source="push")

    # --- query -----------------------------------------------------------------------------

    @workflow.query(name="status")
    def status(self) -> BookingView:
        b = self._booking
        return BookingView(
            booking_id=b.booking_id,
            chain_booking_id=b.chain_booking_id,
            status=self._status,
            reason=self._reason,
            amount_units=b.amount_units,
            customer_wallet=b.customer_wallet,
            provider_wallet=b.provider_wallet,
            inviter_wallet=b.inviter_wallet,
            scheduled_at=b.scheduled_at,
            release_at=self._release_at,
            payment_deadline=self._payment_deadline,
            payment_authorization=self._payment_auth,
            cancellation_authorization=self._cancel_auth,
            refund_tx_hash=self._refund_tx,
            completion_tx_hash=self._completion_tx,
            monitoring_until=self._window.until if self._window else None,
            monitored_tx_hash=self._window.tx_hash if self._window else None,
            applied_event_keys=list(self._applied),
            pending_event_keys=[e.key for e in self._buffered],
            rejected_events=self._rejected,
            transitions=self._seq,
            updated_at=self._updated_at,
        )

    # --- updates (API) ---------------------------------------------------------------------

    @workflow.update(name="authorize_payment")
    async def authorize_payment(self, request: AuthorizePaymentRequest) -> PaymentAuthorization:
        await workflow.wait_condition(lambda: self._recorded)
        async with self._lock:
            self._check_authorize(request)  # the status may have moved while we waited
            reusable = self._reusable_payment_auth()
            self._spend(CancellationRole.CUSTOMER, changed=reusable is None)
            if reusable is not None:
                return reusable
            now = workflow.now()
            expiry = min(
                now + timedelta(seconds=self._policy.authorization_ttl_seconds),
                self._payment_deadline,
            )
            platform_rate, inviter_rate = self._policy.fee_rates(
                has_inviter=self._booking.inviter_wallet is not None
            )
            self._payment_auths += 1
            b = self._booking
            auth: PaymentAuthorization = await workflow.execute_activity(
                c.SIGN_PAYMENT_AUTHORIZATION,
                SignPaymentRequest(
                    booking_id=b.booking_id,
                    idempotency_key=f"{b.booking_id}:payment:{self._payment_auths}",
                    chain_booking_id=b.chain_booking_id,
                    customer=b.customer_wallet,
                    provider=b.provider_wallet,
                    inviter=b.inviter_or_zero,
                    amount=b.amount_units,
                    platform_fee_rate=platform_rate,
                    inviter_fee_rate=inviter_rate,
                    release_time=int(self._release_at.timestamp()),
                    expiry=int(expiry.timestamp()),
                ),
                result_type=PaymentAuthorization,
                start_to_close_timeout=c.SIGN_ACTIVITY_TIMEOUT,
                retry_policy=c.SIGN_RETRY,
            )
            self._payment_auth = auth
            self._open_window(TransactionKind.PAYMENT, None)
            return auth

    @authorize_payment.validator
    def _validate_authorize_payment(self, request: AuthorizePaymentRequest) -> None:
        self._check_authorize(request)
        self._check_budget(CancellationRole.CUSTOMER, changes=self._reusable_payment_auth() is None)

    def _check_authorize(self, request: AuthorizePaymentRequest) -> None:
        if not same_wallet(request.caller_wallet, self._booking.customer_wallet):
            raise WrongCaller("only the booking's customer can ask for a payment authorization")
        if self._status is not S.PENDING_PAYMENT:
            raise WrongState(f"booking is {self._status.value}, not PENDING_PAYMENT")
        if self._unpaid_cancel_reason is not None:
            raise WrongState("the customer asked to cancel this booking; it cannot be paid")
        if workflow.now() >= self._payment_deadline:
            raise WrongState("the payment deadline has passed")
        if (
            self._reusable_payment_auth() is None
            and self._payment_auths >= c.MAX_PAYMENT_AUTHORIZATIONS
        ):
            raise LimitReached("this booking has issued its maximum of payment authorizations")

    def _reusable_payment_auth(self) -> PaymentAuthorization | None:
        auth = self._payment_auth
        if auth is not None and auth.expires_at - workflow.now() >= c.MIN_REUSABLE_AUTHORIZATION:
            return auth
        return None

    @workflow.update(name="report_transaction")
    async def report_transaction(self, request: ReportTransactionRequest) -> TransactionReport:
        await workflow.wait_condition(lambda: self._recorded)
        async with self._lock:
            # Recorded histories from before the trust boundary hold reports with no caller.
            self._check_report(request, caller=workflow.patched(c.PATCH_TRUST_BOUNDARY))
            party = self._reporter(request)
            if self._tx_already_applied(request.tx_hash):
                # The poll (or the listener) got there first: acknowledge, nothing to watch.
                self._spend(party, changed=False)
                return TransactionReport(
                    tx_hash=request.tx_hash, kind=request.kind, monitoring_until=workflow.now()
                )
            self._spend(party, changed=True)
            self._reports[party.value] = self._reports.get(party.value, 0) + 1
            # Since the trust-boundary patch a report only opens a window: the status moves
            # when the chain says so, so a made-up hash changes nothing.
            if (
                request.kind is TransactionKind.COMPLETION
                and self._status is S.PAID
                and not workflow.patched(c.PATCH_TRUST_BOUNDARY)
            ):
                self._completion_tx = request.tx_hash
                await self._transition(
                    S.PENDING_COMPLETION, "completion_reported", tx_hash=request.tx_hash
                )
            window = self._open_window(request.kind, request.tx_hash)
            return TransactionReport(
                tx_hash=request.tx_hash, kind=request.kind, monitoring_until=window.until
            )

    @report_transaction.validator
    def _validate_report_transaction(self, request: ReportTransactionRequest) -> None:
        self._check_report(request, caller=True)
        self._check_budget(
            self._reporter(request), changes=not self._tx_already_applied(request.tx_hash)
        )

    def _reporter(self, request: ReportTransactionRequest) -> CancellationRole:
        """The party whose budget a report spends (operators: none)."""
        return request.role or CancellationRole.CUSTOMER  # None only in old histories

    def _check_report(self, request: ReportTransactionRequest, *, caller: bool) -> None:
        if not TX_HASH.match(request.tx_hash):
            raise InvalidRequest("tx_hash must be 0x followed by 64 hex digits")
        allowed = REPORTABLE.get(request.kind)
        if allowed is None:
            raise InvalidRequest(f"a {request.kind.value} transaction cannot be reported")
        if caller:
            self._check_reporter(request)
        if self._tx_already_applied(request.tx_hash):
            return
        party = self._reporter(request).value
        if (
            request.role is not CancellationRole.OPERATOR
            and self._reports.get(party, 0) >= c.MAX_REPORTED_TRANSACTIONS
        ):
            raise LimitReached(f"this booking has accepted its maximum of reports from the {party}")
        if self._status not in allowed:
            raise WrongState(
                f"a {request.kind.value} transaction does not fit a {self._status.value} booking"
            )

    def _check_reporter(self, request: ReportTransactionRequest) -> None:
        """Only the party who can send a transaction of that kind on chain may report one."""
        role = request.role
        if role is None:
            raise WrongCaller("a report must say who sends it")
        if role is CancellationRole.OPERATOR:
            if not request.wallet.strip():
                raise WrongCaller("an operator report must name the operator")
            return
        wallet = (
            self._booking.customer_wallet
            if role is CancellationRole.CUSTOMER
            else self._booking.provider_wallet
        )
        if not same_wallet(request.wallet, wallet):
            raise WrongCaller(f"the caller is not this booking's {role.value}")
        kind = request.kind
        if kind is TransactionKind.PAYMENT and role is not CancellationRole.CUSTOMER:
            raise WrongCaller("only the customer pays, so only the customer reports a payment")
        if (
            kind is TransactionKind.COMPLETION
            and role is not CancellationRole.CUSTOMER
            and workflow.now() < self._release_at
        ):
            raise WrongCaller(
                "before the release time only the customer can complete, so only the customer "
                "reports a completion"
            )

    def _tx_already_applied(self, tx_hash: str) -> bool:
        wanted = tx_hash.lower()
        return any(e.identity.tx_hash.lower() == wanted for e in self._applied.values())

    @workflow.update(name="request_cancellation")
    async def request_cancellation(self, request: CancellationRequest) -> CancellationResult:
        await workflow.wait_condition(lambda: self._recorded)
        async with self._lock:
            self._check_cancellation(request)
            reason = f"{request.role.value}: {request.reason}"
            if self._status is S.PENDING_PAYMENT:
                if self._unpaid_cancel_reason is not None:
                    self._spend(request.role, changed=False)
                    return CancellationResult(status=self._status, cancels_at=self._cancels_at())
                self._spend(request.role, changed=True)
                live = self._live_payment_auth_until()
                if live is not None and workflow.patched(c.PATCH_TRUST_BOUNDARY):
                    # Cancelling now would leave a valid authorization behind: a payment made
                    # with it lands on a closed booking and costs an operator refund. Close
                    # once it can no longer be used; no new authorization meanwhile.
                    self._unpaid_cancel_reason = reason
                    self._payment_deadline = min(self._payment_deadline, live)
                    await self._transition(S.PENDING_PAYMENT, "cancellation_requested", reason)
                    self._bump_timers()
                    return CancellationResult(status=self._status, cancels_at=self._cancels_at())
                await self._transition(S.CANCELLED, "cancelled_unpaid", reason=reason)
                self._arm_close_check()
                return CancellationResult(status=self._status)
            reusable = self._reusable_cancel_auth(request.role)
            self._spend(request.role, changed=reusable is None)
            if reusable is not None:
                return CancellationResult(status=self._status, authorization=reusable)
            now = workflow.now()
            split = self._cancellation_policy.split(
                role=request.role,
                amount=self._booking.amount_units,
                scheduled_at=self._booking.scheduled_at,
                now=now,
            )
            self._cancel_splits.append(split)
            role = request.role.value
            self._cancel_auths_by[role] = self._cancel_auths_by.get(role, 0) + 1
            b = self._booking
            auth: CancellationAuthorization = await workflow.execute_activity(
                c.SIGN_CANCELLATION_AUTHORIZATION,
                SignCancellationRequest(
                    booking_id=b.booking_id,
                    idempotency_key=f"{b.booking_id}:cancel:{len(self._cancel_splits)}",
                    chain_booking_id=b.chain_booking_id,
                    split=split,
                    # The chain is public and permanent: a code there, the words in Postgres.
                    reason=cancellation_reason(role).value,
                    expiry=int(
                        (
                            now + timedelta(seconds=self._policy.authorization_ttl_seconds)
                        ).timestamp()
                    ),
                    requested_by=request.role,
                ),
                result_type=CancellationAuthorization,
                start_to_close_timeout=c.SIGN_ACTIVITY_TIMEOUT,
                retry_policy=c.SIGN_RETRY,
            )
            self._cancel_auth = auth
            self._cancel_check_at = auth.expires_at + timedelta(
                seconds=self._policy.poll_interval_seconds
            )
            if self._status is not S.PENDING_CANCELLATION:
                await self._transition(S.PENDING_CANCELLATION, "cancellation_authorized", reason)
            self._open_window(TransactionKind.CANCELLATION, None)
            return CancellationResult(status=self._status, authorization=auth)

    @request_cancellation.validator
    def _validate_request_cancellation(self, request: CancellationRequest) -> None:
        self._check_cancellation(request)
        if self._status is S.PENDING_PAYMENT:
            changes = self._unpaid_cancel_reason is None
        else:
            changes = self._reusable_cancel_auth(request.role) is None
        self._check_budget(request.role, changes=changes)

    def _check_cancellation(self, request: CancellationRequest) -> None:
        if not request.reason.strip() or len(request.reason) > MAX_REASON_LENGTH:
            raise InvalidRequest(f"reason must be 1..{MAX_REASON_LENGTH} characters")
        if request.role is CancellationRole.CUSTOMER and not same_wallet(
            request.wallet, self._booking.customer_wallet
        ):
            raise WrongCaller("the caller is not this booking's customer")
        if request.role is CancellationRole.PROVIDER and not same_wallet(
            request.wallet, self._booking.provider_wallet
        ):
            raise WrongCaller("the caller is not this booking's provider")
        if request.role is CancellationRole.OPERATOR and not request.wallet.strip():
            raise WrongCaller("an operator cancellation must name the operator")
        if self._status is S.PENDING_PAYMENT:
            return
        if self._status not in (S.PAID, S.PENDING_CANCELLATION) or self._refund_sent:
            raise WrongState(f"a {self._status.value} booking cannot be cancelled now")
        if (
            self._reusable_cancel_auth(request.role) is None
            and self._cancel_auths_by.get(request.role.value, 0)
            >= c.MAX_CANCELLATION_AUTHORIZATIONS
        ):
            raise LimitReached(
                f"this booking has issued its maximum of cancellation authorizations "
                f"to the {request.role.value}"
            )

    def _reusable_cancel_auth(self, role: CancellationRole) -> CancellationAuthorization | None:
        auth = self._cancel_auth
        if (
            auth is not None
            and self._status is S.PENDING_CANCELLATION
            and auth.requested_by is role
            and auth.expires_at - workflow.now() >= c.MIN_REUSABLE_AUTHORIZATION
        ):
            return auth
        return None

    def _live_payment_auth_until(self) -> datetime | None:
        """When the last payment authorization stops being usable on chain, if it still is.

        The contract compares expiry with the block's timestamp, which lags wall time a little.
        """
        auth = self._payment_auth
        if auth is None or auth.expires_at <= workflow.now():
            return None
        return auth.expires_at + c.AUTO_COMPLETE_MARGIN

    def _cancels_at(self) -> datetime | None:
        return self._payment_deadline if self._unpaid_cancel_reason is not None else None

    @workflow.update(name="emergency_cancel")
    async def emergency_cancel(self, request: EmergencyCancelRequest) -> EmergencyCancelResult:
        await workflow.wait_condition(lambda: self._recorded)
        async with self._lock:
            self._check_emergency(request)
            if self._refund_sent:
                return EmergencyCancelResult(status=self._status, tx_hash=self._refund_tx)
            reason = f"emergency by {request.operator}: {request.reason}"
            self._cancel_check_at = None
            tx_hash = await self._send_refund(OnChainReason.EMERGENCY_REFUND)
            next_status = S.FAILED if self._status is S.FAILED else S.PENDING_CANCELLATION
            await self._transition(next_status, "emergency_cancel_sent", reason, tx_hash=tx_hash)
            return EmergencyCancelResult(status=self._status, tx_hash=tx_hash)

    @emergency_cancel.validator
    def _validate_emergency_cancel(self, request: EmergencyCancelRequest) -> None:
        self._check_emergency(request)  # never refused by a budget: operators can always refund

    def _check_emergency(self, request: EmergencyCancelRequest) -> None:
        if not request.operator.strip():
            raise WrongCaller("an emergency cancellation must name the operator")
        if not request.reason.strip() or len(request.reason) > MAX_REASON_LENGTH:
            raise InvalidRequest(f"reason must be 1..{MAX_REASON_LENGTH} characters")
        if self._refund_sent:
            return
        if self._status in MONEY_HELD:
            return
        if self._status is S.FAILED and self._refund_outstanding:
            return
        raise WrongState(f"a {self._status.value} booking holds no escrowed money to refund")

    @workflow.update(name="resync")
    async def resync(self, request: ResyncRequest) -> ResyncResult:
        """Reconciler/operator: write this workflow's view over a row edited behind its back."""
        await workflow.wait_condition(lambda: self._recorded)
        async with self._lock:
            self._check_operator(request.operator, request.reason)
            self._seq += 1
            applied = list(self._applied.values())
            await workflow.execute_activity(
                RESYNC_BOOKING,
                BookingResync(
                    booking_id=self._booking.booking_id,
                    dedupe_key=f"{self._booking.booking_id}:{self._seq}:resync",
                    status=self._status,
                    reason=self._reason,
                    completion_tx_hash=self._completion_tx,
                    refund_tx_hash=self._refund_tx,
                    applied_events=applied,
                    requested_by=request.operator,
                    request_reason=request.reason[:MAX_REASON_LENGTH],
                    occurred_at=workflow.now(),
                ),
                start_to_close_timeout=c.DB_ACTIVITY_TIMEOUT,
                retry_policy=c.DB_RETRY,
            )
            return ResyncResult(status=self._status, events_marked=len(applied))

    @resync.validator
    def _validate_resync(self, request: ResyncRequest) -> None:
        self._check_operator(request.operator, request.reason)

    @workflow.update(name="redrive")
    async def redrive(self, request: RedriveRequest) -> RedriveResult:
        """Operator: for a FAILED booking, apply what the chain says, else retry the refund."""
        await workflow.wait_condition(lambda: self._recorded)
        async with self._lock:
            self._check_redrive(request)
            before = set(self._applied)
            observation = await self._observe(None)
            applied = [key for key in self._applied if key not in before]
            tx_hash: str | None = None
            if applied:
                action = "applied_chain_events"
            elif not self._refund_outstanding:
                action = "nothing_to_do"
            elif self._refund_sent:
                action = "refund_pending"
            elif observation is not None and observation.onchain_status is OnChainStatus.PAID:
                tx_hash = await self._send_refund(OnChainReason.REFUND_RESENT)
                action = "refund_resent"
            else:
                action = "chain_unreadable" if observation is None else "nothing_to_do"
            await self._transition(
                self._status,
                "redrive",
                f"{action} by {request.operator}: {request.reason}"[:MAX_REASON_LENGTH],
                tx_hash=tx_hash,
            )
            self._bump_timers()
            return RedriveResult(
                status=self._status, action=action, applied_event_keys=applied, tx_hash=tx_hash
            )

    @redrive.validator
    def _validate_redrive(self, request: RedriveRequest) -> None:
        self._check_redrive(request)

    def _check_redrive(self, request: RedriveRequest) -> None:
        self._check_operator(request.operator, request.reason)
        if self._status is not S.FAILED:
            raise WrongState(
                f"only a FAILED booking is re-driven, this one is {self._status.value}"
            )

    @staticmethod
    def _check_operator(operator: str, reason: str) -> None:
        if not operator.strip():
            raise WrongCaller("an operator request must name the operator")
        if not reason.strip() or len(reason) > MAX_REASON_LENGTH:
            raise InvalidRequest(f"reason must be 1..{MAX_REASON_LENGTH} characters")

    def _check_budget(self, role: CancellationRole, *, changes: bool) -> None:
        """Each party has its own budget, so none can use up another's; operators have none.

        Repeats that change nothing (a reused authorization, an applied transaction) do not
        spend the budget for changes, but have a larger one of their own: they still add
        history.
        """
        if role is CancellationRole.OPERATOR:
            return
        party = role.value
        if changes and self._changes.get(party, 0) >= c.MAX_ACCEPTED_UPDATES:
            raise LimitReached(
                f"this booking has accepted its maximum of requests from the {party}"
            )
        if not changes and self._repeats.get(party, 0) >= c.MAX_REPEATED_UPDATES:
            raise LimitReached(f"this booking has answered its maximum of repeats from the {party}")

    def _spend(self, role: CancellationRole, *, changed: bool) -> None:
        if role is CancellationRole.OPERATOR:
            return
        counts = self._changes if changed else self._repeats
        counts[role.value] = counts.get(role.value, 0) + 1

    # --- chain events ----------------------------------------------------------------------

    async def _accept(self, event: ChainEventSignal, *, source: str) -> None:
        """Apply one chain event (pushed or polled) exactly once, in booking order."""
        key = event.key
        if key in self._applied or any(e.key == key for e in self._buffered):
            return
        foreign = foreign_reason(self._booking, event)
        if foreign is not None:
            await self._reject(event, foreign, foreign=True)
            return
        mismatch = mismatch_reason(self._booking, event, self._cancel_splits)
        workflow.logger.info(
            "chain event", extra={"kind": event.kind.value, "key": key, "source": source}
        )
        if event.kind is ChainEventKind.PAYMENT:
            await self._accept_payment(event, mismatch)
        else:
            await self._accept_settlement(event, mismatch)
        self._bump_timers()

    async def _accept_payment(self, event: ChainEventSignal, mismatch: str | None) -> None:
        paid_already = any(e.kind is ChainEventKind.PAYMENT for e in self._applied.values())
        if mismatch is not None and not paid_already:
            await self._escalate(event, mismatch)
            return
        if self._status is S.PENDING_PAYMENT:
            self._applied[event.key] = event
            # A payment that beat a deferred cancellation wins: the booking is paid, and the
            # customer can cancel it under the cancellation policy like any paid booking.
            self._unpaid_cancel_reason = None
            await self._transition(S.PAID, "payment_confirmed", event=event)
            self._close_window()
            self._cancel_check_at = None
            await self._drain_buffer()
        elif self._status is S.CANCELLED or (self._status is S.FAILED and not paid_already):
            await self._escalate(event, "payment arrived after the booking was closed")
        else:
            await self._reject(event, f"a second payment event while {self._status.value}")

    async def _accept_settlement(self, event: ChainEventSignal, mismatch: str | None) -> None:
        if self._status is S.PENDING_PAYMENT:
            # Completion or cancellation before we saw the payment: hold it until we do.
            self._buffered.append(event)
            return
        customer, provider, platform, inviter = settlement_legs(event)
        settlement = Settlement(
            kind=event.kind,
            customer_amount=customer,
            provider_amount=provider,
            platform_amount=platform,
            inviter_amount=inviter,
            emergency=self._refund_sent and event.kind is ChainEventKind.CANCELLATION,
        )
        completed = event.kind is ChainEventKind.COMPLETION
        if self._status in MONEY_HELD:
            self._applied[event.key] = event
            if mismatch is not None:
                # The money already moved (the chain is the truth): record it and escalate.
                await self._transition(
                    S.FAILED,
                    "contradiction",
                    mismatch,
                    event=event,
                    settlement=settlement,
                    event_outcome=EventOutcome.FAILED,
                )
            elif completed:
                await self._transition(
                    S.COMPLETED, "service_completed", event=event, settlement=settlement
                )
            else:
                await self._transition(
                    S.CANCELLED, "booking_cancelled", event=event, settlement=settlement
                )
            self._close_window()
            self._watch_finality()
        elif self._status is S.FAILED and self._refund_outstanding:
            self._applied[event.key] = event
            self._refund_outstanding = False
            action = "completed_while_failed" if completed else "refund_recorded"
            await self._transition(S.FAILED, action, mismatch, event=event, settlement=settlement)
            self._close_window()
            self._watch_finality()
        else:
            await self._reject(event, f"a {event.kind.value} event while {self._status.value}")

    async def _drain_buffer(self) -> None:
        held = sorted(self._buffered, key=lambda e: (e.identity.block_number, e.identity.log_index))
        self._buffered.clear()
        for event in held:
            await self._accept(event, source="buffer")

    async def _revert(self, event: ChainEventSignal) -> None:
        """A reorg removed an event: forget it and roll the booking back if it moved us."""
        key = event.key
        held = [e for e in self._buffered if e.key == key]
        if held:
            self._buffered.remove(held[0])
            return
        applied = self._applied.pop(key, None)
        if applied is None:
            await self._reject(event, "revert of an event this booking never applied")
            return
        if (
            applied.kind is not ChainEventKind.PAYMENT
            and self._status in (S.COMPLETED, S.CANCELLED, S.FAILED)
            and workflow.patched(c.PATCH_SETTLEMENT_FINALITY)
        ):
            await self._settlement_reorged(event, applied)
            return
        if applied.kind is ChainEventKind.PAYMENT and self._status in MONEY_HELD:
            now = workflow.now()
            self._payment_deadline = max(
                self._payment_deadline,
                now + timedelta(seconds=self._policy.monitoring_window_seconds),
            )
            self._cancel_auth = None
            self._cancel_check_at = None
            self._completion_tx = None
            self._auto_complete_attempts = 0
            self._auto_complete_sent = False
            await self._transition(
                S.PENDING_PAYMENT,
                "payment_reorged",
                "payment removed by a reorg",
                event=event,
                event_outcome=EventOutcome.REORGED,
            )
            self._open_window(TransactionKind.PAYMENT, event.identity.tx_hash)
        else:
            await self._transition(
                self._status,
                "event_reverted",
                f"{applied.kind.value} removed by a reorg after it was applied",
                event=event,
                event_outcome=EventOutcome.REORGED,
            )

    async def _settlement_reorged(self, event: ChainEventSignal, applied: ChainEventSignal) -> None:
        """A reorg removed the completion or cancellation: the money is back in escrow.

        The booking goes back to what the chain shows, so the same transaction re-included
        (the usual case) is applied again, and a dropped one is retried or replaced.
        """
        self._final_at = None
        now = workflow.now()
        emergency = self._refund_sent and applied.kind is ChainEventKind.CANCELLATION
        if applied.kind is ChainEventKind.COMPLETION:
            self._completion_tx = None
            self._auto_complete_sent = False
            self._auto_complete_attempts = 0
            # Give the re-inclusion a window before sending a completion of our own.
            self._auto_complete_at = max(
                self._release_at + c.AUTO_COMPLETE_MARGIN,
                now + timedelta(seconds=self._policy.monitoring_window_seconds),
            )
        else:
            self._cancel_auth = None
            self._cancel_check_at = None
        if self._status is S.FAILED:
            target = S.FAILED
            self._refund_outstanding = True
        else:
            target = S.PENDING_CANCELLATION if emergency else S.PAID
        await self._transition(
            target,
            "settlement_reorged",
            f"{applied.kind.value} removed by a reorg; the money is back in escrow",
            event=event,
            event_outcome=EventOutcome.REORGED,
        )
        if target is S.PAID:
            completion = applied.kind is ChainEventKind.COMPLETION
            purpose = TransactionKind.COMPLETION if completion else TransactionKind.CANCELLATION
            self._open_window(purpose, event.identity.tx_hash)
            return
        # A refund we owe: send it again (the sender reads the chain first, so a refund that
        # came back with the reorg is not sent twice).
        self._refund_sent = False
        self._refund_tx = None
        try:
            await self._send_refund(OnChainReason.REFUND_RESENT)
        except ActivityError as err:
            await self._transition(target, "refund_failed", str(err.cause)[:MAX_REASON_LENGTH])
            self._open_window(TransactionKind.REFUND, None)

    def _watch_finality(self) -> None:
        """Stay open after settling until a reorg can no longer remove the settlement."""
        seconds = self._policy.settlement_finality_seconds
        if seconds > 0 and workflow.patched(c.PATCH_SETTLEMENT_FINALITY):
            self._final_at = workflow.now() + timedelta(seconds=seconds)
            self._publish_details()
            self._bump_timers()

    async def _reject(self, event: ChainEventSignal, reason: str, *, foreign: bool = False) -> None:
        """Record an event this booking will not apply (a foreign one is not marked at all)."""
        self._rejected += 1
        workflow.logger.warning("chain event rejected", extra={"key": event.key, "reason": reason})
        if self._rejected <= c.MAX_REJECTED_EVENTS_RECORDED:
            await self._transition(
                self._status,
                "event_rejected",
                reason,
                event=event,
                event_outcome=None if foreign else EventOutcome.FAILED,
            )

    async def _escalate(self, event: ChainEventSignal, reason: str) -> None:
        """Money is held for this booking in a way it did not allow: FAILED, then refund it."""
        self._applied[event.key] = event
        self._refund_outstanding = True
        self._close_check_at = None
        await self._transition(
            S.FAILED, "contradiction", reason, event=event, event_outcome=EventOutcome.FAILED
        )
        if self._refund_sent:
            return
        try:
            await self._send_refund(OnChainReason.ESCALATED_REFUND)
        except ActivityError as err:
            # Often the chain already settled it; the window looks, an operator can resend.
            await self._transition(S.FAILED, "refund_failed", str(err.cause)[:MAX_REASON_LENGTH])
            self._open_window(TransactionKind.REFUND, None)

    # --- operator transactions -------------------------------------------------------------

    async def _send_refund(self, reason: OnChainReason) -> str | None:
        """emergencyCancelBooking with a code as its on-chain reason (the words stay off chain)."""
        b = self._booking
        result: OperatorTxResult = await workflow.execute_activity(
            c.SEND_EMERGENCY_CANCEL,
            OperatorTxRequest(
                booking_id=b.booking_id,
                chain_booking_id=b.chain_booking_id,
                reason=reason.value,
            ),
            result_type=OperatorTxResult,
            start_to_close_timeout=c.SEND_ACTIVITY_TIMEOUT,
            heartbeat_timeout=c.SEND_HEARTBEAT_TIMEOUT,
            retry_policy=c.SEND_RETRY,
        )
        self._refund_sent = True
        self._refund_tx = result.tx_hash
        self._refund_outstanding = True
        self._open_window(TransactionKind.REFUND, result.tx_hash)
        return result.tx_hash

    async def _auto_complete(self) -> None:
        self._auto_complete_attempts += 1
        b = self._booking
        try:
            result: OperatorTxResult = await workflow.execute_activity(
                c.SEND_COMPLETE_SERVICE,
                OperatorTxRequest(booking_id=b.booking_id, chain_booking_id=b.chain_booking_id),
                result_type=OperatorTxResult,
                start_to_close_timeout=c.SEND_ACTIVITY_TIMEOUT,
                heartbeat_timeout=c.SEND_HEARTBEAT_TIMEOUT,
                retry_policy=c.SEND_RETRY,
            )
        except ActivityError as err:
            # Often the chain already moved (customer completed, booking cancelled): look.
            workflow.logger.warning("auto-complete failed", extra={"error": str(err.cause)})
            self._auto_complete_at = workflow.now() + timedelta(
                seconds=self._policy.monitoring_window_seconds
            )
            await self._transition(self._status, "auto_complete_failed", str(err.cause)[:200])
            self._open_window(TransactionKind.COMPLETION, None)
            return
        self._auto_complete_sent = True
        self._completion_tx = result.tx_hash
        await self._transition(S.PENDING_COMPLETION, "auto_complete_sent", tx_hash=result.tx_hash)
        self._open_window(TransactionKind.COMPLETION, result.tx_hash)

    # --- timers ----------------------------------------------------------------------------

    async def _fire_due_timers(self) -> None:
        now = workflow.now()
        if self._window is not None and now >= self._window.next_poll_at:
            await self._poll()
        if self._status is S.PENDING_PAYMENT and workflow.now() >= self._payment_deadline:
            await self._payment_deadline_reached()
        if (
            self._status is S.PENDING_CANCELLATION
            and self._cancel_check_at is not None
            and workflow.now() >= self._cancel_check_at
        ):
            await self._cancellation_expired()
        due = self._auto_complete_due_at()
        if due is not None and workflow.now() >= due:
            await self._auto_complete()
        if self._close_check_at is not None and workflow.now() >= self._close_check_at:
            await self._close_check_reached()
        if self._final_at is not None and workflow.now() >= self._final_at:
            self._final_at = None
            self._bump_timers()

    def _open_window(self, purpose: TransactionKind, tx_hash: str | None) -> _Window:
        now = workflow.now()
        until = now + timedelta(seconds=self._policy.monitoring_window_seconds)
        first_poll = now + timedelta(seconds=self._policy.push_grace_seconds)
        window = self._window
        if window is None:
            window = _Window(purpose=purpose, tx_hash=tx_hash, until=until, next_poll_at=first_poll)
        else:
            window.purpose = purpose
            window.tx_hash = tx_hash or window.tx_hash
            window.until = max(window.until, until)
            window.next_poll_at = min(window.next_poll_at, first_poll)
        self._window = window
        self._bump_timers()
        return window

    def _close_window(self) -> None:
        if self._window is not None:
            self._window = None
            self._bump_timers()

    async def _observe(self, tx_hash: str | None) -> ChainObservation | None:
        b = self._booking
        try:
            observation: ChainObservation = await workflow.execute_activity(
                c.OBSERVE_BOOKING,
                ObserveRequest(
                    booking_id=b.booking_id,
                    chain_booking_id=b.chain_booking_id,
                    tx_hash=tx_hash,
                    confirmations=self._policy.confirmations,
                ),
                result_type=ChainObservation,
                start_to_close_timeout=c.OBSERVE_ACTIVITY_TIMEOUT,
                retry_policy=c.OBSERVE_RETRY,
            )
        except ActivityError as err:
            workflow.logger.warning("chain poll failed", extra={"error": str(err.cause)})
            return None
        for event in sorted(
            observation.events, key=lambda e: (e.identity.block_number, e.identity.log_index)
        ):
            await self._accept(event, source="poll")
        return observation

    async def _poll(self) -> None:
        window = self._window
        assert window is not None
        observation = await self._observe(window.tx_hash)
        if self._window is not window:
            return  # an applied event closed the window
        if observation is not None and observation.tx_status is TxStatus.REVERTED:
            await self._transaction_reverted(window)
            return
        window.next_poll_at += timedelta(seconds=self._policy.poll_interval_seconds)
        if window.next_poll_at > window.until:
            workflow.logger.info(
                "monitoring window ended without a result",
                extra={"purpose": window.purpose.value, "tx_hash": window.tx_hash},
            )
            self._close_window()
        self._bump_timers()

    async def _transaction_reverted(self, window: _Window) -> None:
        tx_hash = window.tx_hash
        self._close_window()
        if self._refund_sent and tx_hash == self._refund_tx:
            self._refund_sent = False  # the operator may send it again
            self._refund_tx = None
            if self._status is S.PENDING_CANCELLATION and self._cancel_auth is None:
                await self._transition(
                    S.PAID, "refund_reverted", "emergency refund reverted", tx_hash=tx_hash
                )
                return
        if self._status is S.PENDING_COMPLETION and tx_hash == self._completion_tx:
            self._completion_tx = None
            self._auto_complete_sent = False
            await self._transition(
                S.PAID, "completion_reverted", "completion transaction reverted", tx_hash=tx_hash
            )
            return
        await self._transition(
            self._status,
            "transaction_reverted",
            f"{window.purpose.value} tx reverted",
            tx_hash=tx_hash,
        )

    def _postpone(self) -> datetime:
        """Next attempt after an inconclusive final check: poll interval, doubling, capped."""
        step = timedelta(seconds=self._policy.poll_interval_seconds) * (1 << self._backoff_steps)
        self._backoff_steps = min(self._backoff_steps + 1, 16)
        self._bump_timers()
        return workflow.now() + min(step, MAX_BACKOFF)

    async def _final_check(self, expected: OnChainStatus) -> bool:
        """Read the chain before acting on a deadline; False means "not sure yet, look again".

        Inconclusive when the read fails or the contract already shows a state whose event
        is not confirmed yet (a payment mined seconds before the deadline).
        """
        observation = await self._observe(None)
        if observation is None or observation.onchain_status is not expected:
            return False
        self._backoff_steps = 0
        return True

    async def _payment_deadline_reached(self) -> None:
        conclusive = await self._final_check(OnChainStatus.NONE)
        if self._status is not S.PENDING_PAYMENT:
            return  # the check found the payment
        if not conclusive:
            self._payment_deadline = self._postpone()
            return
        if self._unpaid_cancel_reason is not None:
            # The customer's cancellation, waiting for the payment authorization to expire.
            await self._transition(S.CANCELLED, "cancelled_unpaid", self._unpaid_cancel_reason)
        else:
            await self._transition(S.CANCELLED, "payment_timeout", "payment_timeout")
        self._close_window()

    async def _cancellation_expired(self) -> None:
        conclusive = await self._final_check(OnChainStatus.PAID)
        if self._status is not S.PENDING_CANCELLATION:
            return
        if not conclusive:
            self._cancel_check_at = self._postpone()
            return
        self._cancel_check_at = None
        self._cancel_auth = None
        await self._transition(S.PAID, "cancellation_expired", "authorization expired unused")
        self._close_window()

    async def _close_check_reached(self) -> None:
        """After an unpaid cancellation: make sure no payment landed with a late authorization."""
        conclusive = await self._final_check(OnChainStatus.NONE)
        if self._close_check_at is None:
            return  # a late payment was found and escalated
        self._close_check_at = self._postpone() if not conclusive else None
        self._bump_timers()

    def _arm_close_check(self) -> None:
        """After an unpaid cancellation, watch until the last payment authorization expires."""
        auth = self._payment_auth
        if auth is not None and auth.expires_at > workflow.now():
            self._close_check_at = auth.expires_at + timedelta(
                seconds=self._policy.poll_interval_seconds
            )
            self._bump_timers()

    # --- persistence and visibility --------------------------------------------------------

    async def _transition(
        self,
        to: BookingStatus,
        action: str,
        reason: str | None = None,
        *,
        event: ChainEventSignal | None = None,
        settlement: Settlement | None = None,
        tx_hash: str | None = None,
        event_outcome: EventOutcome | None = EventOutcome.PROCESSED,
    ) -> None:
        """Persist one audited change, then make it visible (memory, search attributes, UI)."""
        self._seq += 1
        now = workflow.now()
        await self._write(
            c.APPLY_TRANSITION,
            TransitionRecord(
                booking_id=self._booking.booking_id,
                dedupe_key=f"{self._booking.booking_id}:{self._seq}:{action}",
                from_status=self._status,
                to_status=to,
                action=action,
                reason=reason,
                event=event,
                event_outcome=event_outcome if event is not None else None,
                settlement=settlement,
                tx_hash=tx_hash,
                occurred_at=now,
            ),
        )
        self._updated_at = now
        if to is self._status:
            return
        self._status = to
        self._reason = reason
        workflow.upsert_search_attributes([sa.BOOKING_STATUS.value_set(to.value)])
        self._publish_details()
        self._bump_timers()

    async def _write(self, activity: str, arg: BookingInput | TransitionRecord) -> None:
        """One idempotent Postgres write (it dedupes on its key, so a re-run after a crash
        changes nothing). Run as a local activity: no server round trip to schedule and
        dispatch it, which is most of an event's latency and half its history."""
        run = (
            workflow.execute_local_activity
            if workflow.patched(c.PATCH_LOCAL_DB_WRITES)
            else workflow.execute_activity
        )
        await run(
            activity, arg, start_to_close_timeout=c.DB_ACTIVITY_TIMEOUT, retry_policy=c.DB_RETRY
        )

    def _publish_details(self) -> None:
        details = booking_summary(self._booking, self._status)
        if self._reason:
            details += f"\n\nreason: {self._reason}"
        if self._final_at is not None:
            details += f"\n\nsettled; listening for reorgs until {self._final_at.isoformat()}"
        workflow.set_current_details(details)
