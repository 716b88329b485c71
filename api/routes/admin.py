"""`/admin`: operator-only repairs (emergency refunds) and on-demand reconciliation."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from api.convert import emergency_cancel_public
from api.deps import OperatorUser, StateDep, VisibleBooking
from api.errors import error_responses
from api.schemas import EmergencyCancelCreate, EmergencyCancelPublic
from api.temporal_errors import answered
from workflows.client import BookingClient
from workflows.reconcile import ReconcileWorkflow
from workflows.reconcile_types import ReconcileInput, manual_reconcile_workflow_id
from workflows.types import EmergencyCancelRequest

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post(
    "/bookings/{booking_id}/emergency-cancel",
    response_model=EmergencyCancelPublic,
    responses=error_responses(400, 401, 403, 404, 409, 422, 503),
)
async def emergency_cancel(
    operator: OperatorUser, booking: VisibleBooking, body: EmergencyCancelCreate, state: StateDep
) -> EmergencyCancelPublic:
    """Refund the booking's escrow in full with the operator key (operators only)."""
    request = EmergencyCancelRequest(operator=operator.user_id, reason=body.reason)
    workflow = BookingClient.for_booking(state.temporal, str(booking.id))
    result = await answered(workflow.emergency_cancel(request))
    return emergency_cancel_public(result)


class ReconcileCreate(BaseModel):
    """Options of an on-demand reconcile run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    full: bool = Field(
        default=False, description="Scan every booking and block, not only recent ones."
    )
    page_size: int = Field(default=200, ge=1, le=2000)


class ReconcileStartedPublic(BaseModel):
    """The started reconcile workflow and where to watch it."""

    workflow_id: str
    link: str


@router.post(
    "/reconcile",
    response_model=ReconcileStartedPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 422, 503),
)
async def start_reconcile(
    operator: OperatorUser, state: StateDep, body: ReconcileCreate | None = None
) -> ReconcileStartedPublic:
    """Start a reconcile run now (operators only); its report is the workflow's result."""
    options = body or ReconcileCreate()
    settings = state.settings
    workflow_id = manual_reconcile_workflow_id(str(uuid.uuid4()))
    await state.temporal.start_workflow(
        ReconcileWorkflow.run,
        ReconcileInput(
            full=options.full, page_size=options.page_size, reason=f"manual by {operator.user_id}"
        ),
        id=workflow_id,
        task_queue=settings.task_queue,
    )
    ui = settings.temporal_ui_url or f"http://127.0.0.1:{settings.dev_temporal_ui_port}"
    link = f"{ui.rstrip('/')}/namespaces/{settings.temporal_namespace}/workflows/{workflow_id}"
    return ReconcileStartedPublic(workflow_id=workflow_id, link=link)
