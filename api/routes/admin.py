"""`/admin`: operator-only repairs (emergency refunds)."""

from __future__ import annotations

from fastapi import APIRouter

from api import workflow_calls as calls
from api.convert import emergency_cancel_public
from api.deps import OperatorUser, StateDep, VisibleBooking
from api.errors import error_responses
from api.schemas import EmergencyCancelCreate, EmergencyCancelPublic
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
    result = await calls.emergency_cancel(
        state.temporal,
        str(booking.id),
        EmergencyCancelRequest(operator=operator.user_id, reason=body.reason),
    )
    return emergency_cancel_public(result)
