"""A booking's workflow (and an orphan payment's) as its clients reach it: start, updates,
signals, the ``status`` query.

The API, the ``bookme`` CLI, the reconciler and the listener all call a booking through
`BookingClient` (orphan refunds through `OrphanClient`), so each update and signal goes by typed
reference (``BookingWorkflow.x``, never by name) and the SDK's stub
mistyping is silenced once, in `BookingClient._update`. Temporal's errors pass through
unchanged: each edge maps them its own way (HTTP errors, ``OpsError``, a missing view).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    RPCError,
    RPCStatusCode,
    WithStartWorkflowOperation,
    WorkflowExecutionDescription,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import UpdateMethodMultiParam

from workflows.booking import BookingWorkflow
from workflows.constants import booking_workflow_id, orphan_workflow_id
from workflows.orphan import OrphanPaymentWorkflow
from workflows.types import (
    AuthorizePaymentRequest,
    BookingInput,
    BookingPolicy,
    BookingView,
    CancellationRequest,
    CancellationResult,
    ChainEventKind,
    ChainEventSignal,
    EmergencyCancelRequest,
    EmergencyCancelResult,
    OrphanPaymentInput,
    PaymentAuthorization,
    PaymentSighting,
    RecordedBooking,
    RedriveRequest,
    RedriveResult,
    ReportTransactionRequest,
    ResyncRequest,
    ResyncResult,
    TransactionReport,
)
from workflows.types.relay import RelayedPayment, RelayPaymentRequest

RequestT = TypeVar("RequestT")
ResultT = TypeVar("ResultT")

_EVENT_SIGNALS: dict[ChainEventKind, Callable[..., Any]] = {
    ChainEventKind.PAYMENT: BookingWorkflow.payment_confirmed,
    ChainEventKind.COMPLETION: BookingWorkflow.service_completed,
    ChainEventKind.CANCELLATION: BookingWorkflow.booking_cancelled,
}
# The orphan refund is started by its payment's signal (signal-with-start).
_ORPHAN_START_SIGNAL = "payment_confirmed"


async def _signal(handle: WorkflowHandle[Any, Any], signal: Callable[..., Any], arg: Any) -> bool:
    """Send `signal`; False when no such workflow is running (finished, or never started)."""
    try:
        await handle.signal(signal, arg)
    except RPCError as exc:
        if exc.status is not RPCStatusCode.NOT_FOUND:
            raise
        return False
    return True


def _start_unless_running(
    booking: BookingInput, *, task_queue: str, memo: Mapping[str, Any]
) -> WithStartWorkflowOperation[BookingWorkflow, BookingView]:
    """The start of an update-with-start: joins a running workflow of the booking
    (``USE_EXISTING``), never restarts a closed one (``REJECT_DUPLICATE``)."""
    return WithStartWorkflowOperation(
        BookingWorkflow.run,
        booking,
        id=booking_workflow_id(booking.booking_id),
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        memo=memo,
    )


class BookingClient:
    """A handle on one booking workflow with a typed method per update and query."""

    def __init__(self, client: Client, workflow_id: str) -> None:
        self._handle: WorkflowHandle[BookingWorkflow, BookingView] = client.get_workflow_handle_for(
            BookingWorkflow.run, workflow_id
        )

    @classmethod
    def for_booking(cls, client: Client, booking_id: str) -> BookingClient:
        """The workflow of booking ``booking_id`` (``booking-<id>``)."""
        return cls(client, booking_workflow_id(booking_id))

    @classmethod
    async def start(
        cls, client: Client, booking: BookingInput, *, task_queue: str, memo: Mapping[str, Any]
    ) -> BookingClient:
        """Start the booking's workflow; `WorkflowAlreadyStartedError` if its id was ever used."""
        workflow_id = booking_workflow_id(booking.booking_id)
        await client.start_workflow(
            BookingWorkflow.run,
            booking,
            id=workflow_id,
            task_queue=task_queue,
            # A booking id is used once, ever: a replay must find, not restart, its workflow.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            memo=memo,
        )
        return cls(client, workflow_id)

    @classmethod
    async def create(
        cls,
        client: Client,
        booking: BookingInput,
        *,
        task_queue: str,
        memo: Mapping[str, Any],
        answer_within: timedelta | None = None,
    ) -> RecordedBooking:
        """Start the booking's workflow unless it runs, and return it once its row is written.

        One call (update-with-start of ``recorded``) under ``USE_EXISTING``: concurrent creations
        of one booking id share one workflow, the first start input wins (the answer carries it,
        so a caller can tell its own request from another's). A closed workflow is never
        restarted (``REJECT_DUPLICATE``): ``WorkflowAlreadyStartedError``. No answer within
        ``answer_within`` (no worker, Postgres slow): ``WorkflowUpdateRPCTimeoutOrCancelledError``.
        """
        start = _start_unless_running(booking, task_queue=task_queue, memo=memo)
        # The stubs refuse the typed update reference, as in `_update`.
        recorded: RecordedBooking = await client.execute_update_with_start_workflow(
            BookingWorkflow.recorded,  # type: ignore[arg-type]
            start_workflow_operation=start,
            rpc_timeout=answer_within,
        )
        return recorded

    @classmethod
    async def adopt(
        cls,
        client: Client,
        booking: BookingInput,
        request: AuthorizePaymentRequest,
        *,
        task_queue: str,
        memo: Mapping[str, Any],
    ) -> PaymentAuthorization:
        """Start the booking's workflow unless it runs, and ask it to authorize payment: one call.

        Update-with-start under ``USE_EXISTING``: concurrent adoptions of one booking (from any
        number of API processes) share one workflow, the first start input wins, and each gets
        the update's answer. A closed workflow is never restarted (``REJECT_DUPLICATE``):
        ``WorkflowAlreadyStartedError``.
        """
        start = _start_unless_running(booking, task_queue=task_queue, memo=memo)
        # The stubs refuse the typed update reference, as in `_update`.
        auth: PaymentAuthorization = await client.execute_update_with_start_workflow(
            BookingWorkflow.authorize_payment,  # type: ignore[arg-type]
            request,
            start_workflow_operation=start,
        )
        return auth

    @property
    def workflow_id(self) -> str:
        return self._handle.id

    async def describe(self) -> WorkflowExecutionDescription:
        """Temporal's description of the workflow (status, run id, memo)."""
        return await self._handle.describe()

    async def result(self) -> BookingView:
        """The closed workflow's result (its last view; no worker needed)."""
        return await self._handle.result()

    async def status(self) -> BookingView:
        """The ``status`` query (closed workflows answer it too)."""
        return await self._handle.query(BookingWorkflow.status)

    async def authorize_payment(self, request: AuthorizePaymentRequest) -> PaymentAuthorization:
        return await self._update(BookingWorkflow.authorize_payment, request)

    async def relay_payment(self, request: RelayPaymentRequest) -> RelayedPayment:
        return await self._update(BookingWorkflow.relay_payment, request)

    async def report_transaction(self, request: ReportTransactionRequest) -> TransactionReport:
        return await self._update(BookingWorkflow.report_transaction, request)

    async def request_cancellation(self, request: CancellationRequest) -> CancellationResult:
        return await self._update(BookingWorkflow.request_cancellation, request)

    async def emergency_cancel(self, request: EmergencyCancelRequest) -> EmergencyCancelResult:
        return await self._update(BookingWorkflow.emergency_cancel, request)

    async def redrive(self, request: RedriveRequest) -> RedriveResult:
        return await self._update(BookingWorkflow.redrive, request)

    async def resync(self, request: ResyncRequest) -> ResyncResult:
        return await self._update(BookingWorkflow.resync, request)

    async def deliver(self, event: ChainEventSignal) -> bool:
        """The chain event's signal; False when the workflow is not running."""
        return await _signal(self._handle, _EVENT_SIGNALS[event.kind], event)

    async def revert(self, event: ChainEventSignal) -> bool:
        """``chain_event_reverted``: a reorg removed `event`; False when not running."""
        return await _signal(self._handle, BookingWorkflow.chain_event_reverted, event)

    async def payment_seen(self, sighting: PaymentSighting) -> bool:
        """``payment_seen``: a payment not yet confirmed, or its withdrawal; False when not running."""
        return await _signal(self._handle, BookingWorkflow.payment_seen, sighting)

    async def _update(
        self,
        update: UpdateMethodMultiParam[[BookingWorkflow, RequestT], Coroutine[Any, Any, ResultT]],
        request: RequestT,
    ) -> ResultT:
        # temporalio's stubs type an `async def` update as returning its coroutine, so they refuse
        # the (correct) typed reference here; the call returns the awaited value.
        return await self._handle.execute_update(update, request)  # type: ignore[arg-type]


class OrphanClient:
    """The refund workflow of a payment no booking row knows (``orphan-<chain booking id>``)."""

    def __init__(self, client: Client, chain_booking_id: str) -> None:
        self._client = client
        self._handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(
            orphan_workflow_id(chain_booking_id)
        )

    @property
    def workflow_id(self) -> str:
        return self._handle.id

    async def start(
        self, payment: ChainEventSignal, *, policy: BookingPolicy, task_queue: str
    ) -> bool:
        """Start the refund with its payment (or signal the running one); False if it finished."""
        try:
            await self._client.start_workflow(
                OrphanPaymentWorkflow.run,
                OrphanPaymentInput(event=payment, policy=policy),
                id=self.workflow_id,
                task_queue=task_queue,
                start_signal=_ORPHAN_START_SIGNAL,
                start_signal_args=[payment],
                # A finished refund must never be started again for a replayed payment.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
        except WorkflowAlreadyStartedError:
            return False
        return True

    async def cancelled(self, event: ChainEventSignal) -> bool:
        """The refund's cancellation event; False when not running."""
        return await _signal(self._handle, OrphanPaymentWorkflow.booking_cancelled, event)

    async def revert(self, event: ChainEventSignal) -> bool:
        """A reorg removed the payment or the refund; False when not running."""
        return await _signal(self._handle, OrphanPaymentWorkflow.chain_event_reverted, event)
