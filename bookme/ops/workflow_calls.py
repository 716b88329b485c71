"""Booking workflow queries and operator updates with Temporal's errors as `OpsError`s."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from bookme.ops.errors import OpsError, Refused, Unreachable
from chain.escrow import booking_id_bytes
from workflows import BookingWorkflow, booking_workflow_id
from workflows.types import BookingView

T = TypeVar("T")


def workflow_id_for(booking_ref: str) -> str:
    """``booking-<uuid>`` for a booking id; any other workflow id (orphan-, reconcile-) as is."""
    try:
        return booking_workflow_id(str(uuid.UUID(booking_ref)))
    except ValueError:
        if booking_ref.startswith(("booking-", "orphan-", "reconcile-", "retention-")):
            return booking_ref
        raise OpsError(
            f"{booking_ref!r} is neither a booking id (UUID) nor a workflow id"
        ) from None


def is_chain_booking_id(ref: str) -> bool:
    try:
        booking_id_bytes(ref)
    except ValueError:
        return False
    return True


def rpc_error(exc: RPCError, workflow_id: str) -> OpsError:
    if exc.status is RPCStatusCode.NOT_FOUND:
        return OpsError(f"no workflow {workflow_id} in Temporal")
    if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return Unreachable(f"Temporal did not answer for {workflow_id}: {exc.message}")
    return OpsError(f"Temporal refused the call on {workflow_id}: {exc.message}")


async def describe(client: Client, workflow_id: str) -> WorkflowExecutionDescription:
    try:
        return await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        raise rpc_error(exc, workflow_id) from None


async def booking_view(client: Client, workflow_id: str) -> BookingView:
    """The booking workflow's ``status`` query (works on closed workflows too)."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        return await handle.query(BookingWorkflow.status)
    except RPCError as exc:
        raise rpc_error(exc, workflow_id) from None
    except WorkflowQueryFailedError as exc:
        raise OpsError(f"the status query of {workflow_id} failed: {exc}") from None


async def execute_update(
    client: Client, workflow_id: str, update: str, request: Any, result_type: type[T]
) -> T:
    """Run a named update; a rejection or failure in the workflow becomes `Refused`."""
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id)
    try:
        result: T = await handle.execute_update(update, request, result_type=result_type)
    except RPCError as exc:
        raise rpc_error(exc, workflow_id) from None
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        message = getattr(cause, "message", None) or str(cause or exc)
        raise Refused(f"{workflow_id} refused {update}: {message}") from None
    return result
