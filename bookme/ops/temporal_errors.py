"""Temporal's errors on a workflow call as `OpsError`s that name the workflow."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from temporalio.client import WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from bookme.ops.errors import OpsError, Refused, Unreachable

T = TypeVar("T")


def rpc_error(exc: RPCError, workflow_id: str) -> OpsError:
    if exc.status is RPCStatusCode.NOT_FOUND:
        return OpsError(f"no workflow {workflow_id} in Temporal")
    if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return Unreachable(f"Temporal did not answer for {workflow_id}: {exc.message}")
    return OpsError(f"Temporal refused the call on {workflow_id}: {exc.message}")


async def answered(call: Awaitable[T], workflow_id: str, name: str) -> T:
    """Await the call ``name`` on a workflow; a refusal in the workflow becomes `Refused`."""
    try:
        return await call
    except RPCError as exc:
        raise rpc_error(exc, workflow_id) from None
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        message = getattr(cause, "message", None) or str(cause or exc)
        raise Refused(f"{workflow_id} refused {name}: {message}") from None
    except WorkflowQueryFailedError as exc:
        raise OpsError(f"the {name} query of {workflow_id} failed: {exc}") from None
