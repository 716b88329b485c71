"""``bookme replay``: replay a workflow's recorded history against the workflow code here."""

from __future__ import annotations

from typing import IO

from temporalio.service import RPCError
from temporalio.worker import Replayer

from bookme.ops.booking_refs import workflow_id_for
from bookme.ops.deps import connect_temporal
from bookme.ops.temporal_errors import rpc_error
from bookme.settings import Settings
from workflows import DATA_CONVERTER, WORKFLOWS
from workflows.sandbox import workflow_runner


async def replay(settings: Settings, ref: str, out: IO[str]) -> int:
    """0 if the current code reproduces the recorded commands, 1 if it is non-deterministic."""
    client = await connect_temporal(settings)
    workflow_id = workflow_id_for(ref)
    try:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
    except RPCError as exc:
        raise rpc_error(exc, workflow_id) from None
    replayer = Replayer(
        workflows=WORKFLOWS, data_converter=DATA_CONVERTER, workflow_runner=workflow_runner()
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    events = len(history.events)
    if result.replay_failure is None:
        out.write(f"determinism OK: {workflow_id} ({events} events) replays on the current code\n")
        return 0
    out.write(
        f"determinism FAILURE: {workflow_id} ({events} events): {result.replay_failure}\n"
        "Changed workflow code must keep old histories replaying: gate the change with "
        "workflow.patched() (see tests/workflows/test_replay.py).\n"
    )
    return 1
