"""What a workflow wrote to Postgres, read back from its history by replaying it.

The rebuild re-runs each recorded write through the same activity code the worker runs, with
the very input the workflow gave it: the history holds every decision the workflow made, and the
replay (the workflow's own code, fed its recorded events) rebuilds each activity input exactly.
Nothing here infers a row from a workflow's state, so there is no second writer to drift.

Only writes that completed in the original run are kept (one that Postgres refused for good
refused then too); a write still in flight when the history ends is left to the workflow,
which makes it once its worker runs again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import (
    Interceptor,
    Replayer,
    StartActivityInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from temporalio.workflow import ActivityHandle

from workflows import DATA_CONVERTER, WORKFLOWS
from workflows import constants as c
from workflows.reconcile_types import RESYNC_BOOKING
from workflows.sandbox import workflow_runner
from workflows.types import CancellationAuthorization, PaymentAuthorization

# The projection writes, by activity name: each is idempotent on its own key.
PROJECTION_WRITES = frozenset(
    {c.RECORD_BOOKING, c.APPLY_TRANSITION, RESYNC_BOOKING, c.RECORD_ORPHAN}
)
SIGNINGS = frozenset({c.SIGN_PAYMENT_AUTHORIZATION, c.SIGN_CANCELLATION_AUTHORIZATION})


@dataclass(frozen=True, kw_only=True)
class RecordedWrite:
    """One projection write as the workflow made it: the activity and its input."""

    activity: str
    arg: Any


@dataclass(kw_only=True)
class Captured:
    """One workflow's completed projection writes in order, and the nonces it had signed."""

    writes: list[RecordedWrite] = field(default_factory=list)
    nonces: list[int] = field(default_factory=list)
    replay_failure: str | None = None


def _succeeded(task: asyncio.Future[Any]) -> bool:
    return not task.cancelled() and task.exception() is None


def _interceptor(captures: dict[str, Captured]) -> Interceptor:
    """Records into ``captures[workflow id]`` (the replayer replays one history at a time)."""

    def on_done(
        captured: Captured, activity: str, arg: Any
    ) -> Callable[[asyncio.Future[Any]], None]:
        def done(task: asyncio.Future[Any]) -> None:
            if not _succeeded(task):
                return
            if activity in PROJECTION_WRITES:
                captured.writes.append(RecordedWrite(activity=activity, arg=arg))
            result = task.result()
            if isinstance(result, PaymentAuthorization | CancellationAuthorization):
                captured.nonces.append(result.nonce)

        return done

    def watch(activity: str, args: Any, handle: ActivityHandle[Any]) -> ActivityHandle[Any]:
        if activity in PROJECTION_WRITES | SIGNINGS and args:
            captured = captures.setdefault(workflow.info().workflow_id, Captured())
            handle.add_done_callback(on_done(captured, activity, args[0]))
        return handle

    class Outbound(WorkflowOutboundInterceptor):
        def start_activity(self, input: StartActivityInput) -> ActivityHandle[Any]:
            return watch(input.activity, input.args, super().start_activity(input))

        def start_local_activity(self, input: StartLocalActivityInput) -> ActivityHandle[Any]:
            return watch(input.activity, input.args, super().start_local_activity(input))

    class Inbound(WorkflowInboundInterceptor):
        def init(self, outbound: WorkflowOutboundInterceptor) -> None:
            super().init(Outbound(outbound))

    class Capture(Interceptor):
        def workflow_interceptor_class(
            self, input: WorkflowInterceptorClassInput
        ) -> type[WorkflowInboundInterceptor]:
            return Inbound

    return Capture()


async def capture_all(
    histories: AsyncIterator[WorkflowHistory],
) -> AsyncIterator[tuple[str, Captured]]:
    """Replay each history with the current workflow code and yield what it wrote, by workflow
    id. One replayer for all: building one costs far more than replaying a booking."""
    captures: dict[str, Captured] = {}
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=DATA_CONVERTER,
        interceptors=[_interceptor(captures)],
        workflow_runner=workflow_runner(),  # the worker's own sandbox
    )
    async with replayer.workflow_replay_iterator(histories) as results:
        async for result in results:
            workflow_id = result.history.workflow_id
            captured = captures.pop(workflow_id, None) or Captured()
            if result.replay_failure is not None:
                captured.replay_failure = str(result.replay_failure)
            yield workflow_id, captured
