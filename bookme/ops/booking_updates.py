"""``bookme redrive``: an operator update on one booking workflow (emergency-cancel: emergency_refund)."""

from __future__ import annotations

from typing import IO

from bookme.ops.booking_refs import workflow_id_for
from bookme.ops.deps import connect_temporal
from bookme.ops.temporal_errors import answered
from bookme.settings import Settings
from workflows.client import BookingClient
from workflows.types import RedriveRequest


async def redrive(
    settings: Settings, booking_ref: str, *, operator: str, reason: str, out: IO[str]
) -> int:
    """Re-read the chain for a FAILED booking and apply it, or retry its failed refund."""
    client = await connect_temporal(settings)
    workflow = BookingClient(client, workflow_id_for(booking_ref))
    request = RedriveRequest(operator=operator, reason=reason)
    result = await answered(workflow.redrive(request), workflow.workflow_id, "redrive")
    applied = ", ".join(result.applied_event_keys) or "none"
    tx = f"; tx {result.tx_hash}" if result.tx_hash else ""
    out.write(
        f"{workflow.workflow_id}: {result.action}; now {result.status.value}; "
        f"events applied: {applied}{tx}\n"
    )
    return 0
