"""One booking workflow as its clients reach it: start, the updates, the ``status`` query.

The API, the ``bookme`` CLI and the reconciler all call a booking through `BookingClient`, so
each update goes by typed reference (``BookingWorkflow.x``, never by name) and the SDK's stub
mistyping is silenced once, in `BookingClient._update`. Temporal's errors pass through
unchanged: each edge maps them its own way (HTTP errors, ``OpsError``, a missing view).
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionDescription,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.workflow import UpdateMethodMultiParam

from workflows.booking import BookingWorkflow
from workflows.constants import booking_workflow_id
from workflows.reconcile_types import RedriveRequest, RedriveResult, ResyncRequest, ResyncResult
from workflows.types import (
    AuthorizePaymentRequest,
    BookingInput,
    BookingView,
    CancellationRequest,
    CancellationResult,
    EmergencyCancelRequest,
    EmergencyCancelResult,
    PaymentAuthorization,
    ReportTransactionRequest,
    TransactionReport,
)

RequestT = TypeVar("RequestT")
ResultT = TypeVar("ResultT")


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
        start = WithStartWorkflowOperation(
            BookingWorkflow.run,
            booking,
            id=booking_workflow_id(booking.booking_id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            memo=memo,
        )
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

    async def status(self) -> BookingView:
        """The ``status`` query (closed workflows answer it too)."""
        return await self._handle.query(BookingWorkflow.status)

    async def authorize_payment(self, request: AuthorizePaymentRequest) -> PaymentAuthorization:
        return await self._update(BookingWorkflow.authorize_payment, request)

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

    async def _update(
        self,
        update: UpdateMethodMultiParam[[BookingWorkflow, RequestT], Coroutine[Any, Any, ResultT]],
        request: RequestT,
    ) -> ResultT:
        # temporalio's stubs type an `async def` update as returning its coroutine, so they refuse
        # the (correct) typed reference here; the call returns the awaited value.
        return await self._handle.execute_update(update, request)  # type: ignore[arg-type]
