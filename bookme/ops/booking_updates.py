"""``bookme redrive``: an operator update on one booking workflow (emergency-cancel: emergency_refund)."""

from __future__ import annotations

from typing import IO, TypeVar

from bookme.ops.deps import connect_temporal
from bookme.ops.workflow_calls import execute_update, workflow_id_for
from bookme.settings import Settings
from workflows.reconcile_types import REDRIVE_UPDATE, RedriveRequest, RedriveResult

T = TypeVar("T")


async def _update(
    settings: Settings, booking_ref: str, update: str, request: object, result_type: type[T]
) -> tuple[str, T]:
    client = await connect_temporal(settings)
    workflow_id = workflow_id_for(booking_ref)
    return workflow_id, await execute_update(client, workflow_id, update, request, result_type)


async def redrive(
    settings: Settings, booking_ref: str, *, operator: str, reason: str, out: IO[str]
) -> int:
    """Re-read the chain for a FAILED booking and apply it, or retry its failed refund."""
    workflow_id, result = await _update(
        settings,
        booking_ref,
        REDRIVE_UPDATE,
        RedriveRequest(operator=operator, reason=reason),
        RedriveResult,
    )
    applied = ", ".join(result.applied_event_keys) or "none"
    tx = f"; tx {result.tx_hash}" if result.tx_hash else ""
    out.write(
        f"{workflow_id}: {result.action}; now {result.status.value}; events applied: {applied}{tx}\n"
    )
    return 0
