"""The narrowed sandbox still guards workflow code: only pure modules are passed through."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from workflows import WORKFLOWS
from workflows.sandbox import passthrough_modules, workflow_class_modules, workflow_runner


@workflow.defn(name="test-reads-the-wall-clock")
class ReadsTheWallClock:
    @workflow.run
    async def run(self) -> str:
        return datetime.now().isoformat()  # what the sandbox exists to refuse


def _passed_through(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in passthrough_modules())


def test_every_workflow_class_module_is_reimported_per_run():
    for cls in WORKFLOWS:
        assert not _passed_through(cls.__module__), cls


def test_the_pure_modules_workflow_code_imports_are_passed_through():
    for module in ("workflows.types", "workflows.constants", "workflows.booking.guards"):
        assert _passed_through(module)
    assert "workflows.booking" in workflow_class_modules()  # a parent: never passed through


async def test_a_workflow_reading_the_wall_clock_is_refused():
    # A server of its own: a workflow whose tasks keep failing leaves the time-skipping server
    # unable to skip time even once terminated, and a later test's sleep would hang on it.
    # (Imported here: the sandbox re-imports this module, which holds a workflow.)
    from bookme.embedded.temporal import venv_binary

    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(venv_binary("temporal-test-server"))
    ) as env:
        await _refused_for_reading_the_wall_clock(env)


async def _refused_for_reading_the_wall_clock(env: WorkflowEnvironment) -> None:
    client = env.client
    queue = f"sandbox-test-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=queue, workflows=[ReadsTheWallClock], workflow_runner=workflow_runner()
    ):
        handle = await client.start_workflow(
            ReadsTheWallClock.run, id=f"sandbox-{uuid.uuid4()}", task_queue=queue
        )
        try:
            failure = None
            for _ in range(250):
                history = await handle.fetch_history()
                failed = [
                    e
                    for e in history.events
                    if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
                ]
                if failed:
                    failure = failed[0].workflow_task_failed_event_attributes.failure.message
                    break
                await asyncio.sleep(0.02)
        finally:
            await handle.terminate("test finished")
    assert failure is not None
    assert "datetime.datetime.now" in failure
