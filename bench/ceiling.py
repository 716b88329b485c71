"""Ceilings measured on the same Temporal server: bare workflows driven directly."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from bench.bare import BareCreate, BareLifecycle, BareUpdate, bare_activity
from bench.cpu import CpuUse
from workflows.sandbox import workflow_runner

MESSAGE_EVENTS = (
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
)


# The SDK's marker for a local activity's result.
LOCAL_ACTIVITY_MARKER = "core_local_activity"


@dataclass(frozen=True, kw_only=True)
class HistoryShape:
    """What one booking's history holds: messages, regular and local activities."""

    messages: int
    activities: int
    local_activities: int

    def text(self) -> str:
        return f"{self.messages} msgs + {self.activities} acts + {self.local_activities} local"


async def history_shape(client: Client, workflow_id: str) -> HistoryShape:
    """Signals + updates received, activities scheduled and local activities run."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    events = history.events
    return HistoryShape(
        messages=sum(1 for e in events if e.event_type in MESSAGE_EVENTS),
        activities=sum(
            1 for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        ),
        local_activities=sum(
            1
            for e in events
            if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and e.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
        ),
    )


def bare_worker(client: Client, queue: str) -> Worker:
    return Worker(
        client,
        task_queue=queue,
        workflows=[BareLifecycle, BareUpdate, BareCreate],
        activities=[bare_activity],
        workflow_runner=workflow_runner(),  # the worker's own: a ceiling on equal terms
    )


async def bare_lifecycles(
    client: Client,
    *,
    count: int,
    concurrency: int,
    shape: HistoryShape,
    cpu: Callable[[], dict[str, float]],
) -> tuple[float, CpuUse]:
    """Seconds for `count` bare workflows with one booking's messages and activities, and the
    CPU (`cpu` reads it) spent over those seconds: the worker's start is in neither."""
    queue = f"bench-bare-{uuid.uuid4().hex[:8]}"
    limit = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with limit:
            handle = await client.start_workflow(
                BareLifecycle.run,
                args=[shape.messages, shape.activities, shape.local_activities],
                id=f"bench-bare-{uuid.uuid4()}",
                task_queue=queue,
            )
            for _ in range(shape.messages):
                await handle.signal(BareLifecycle.poke)
            await handle.result()

    async with bare_worker(client, queue):
        before, began = cpu(), time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        seconds = time.perf_counter() - began
        return seconds, CpuUse.between(before, cpu(), seconds)


async def bare_updates(
    client: Client, *, count: int, concurrency: int
) -> tuple[list[float], float]:
    """Round trips (s) of an update running one activity, `concurrency` at a time; and elapsed."""
    queue = f"bench-update-{uuid.uuid4().hex[:8]}"
    async with bare_worker(client, queue):
        handles = await asyncio.gather(
            *(
                client.start_workflow(
                    BareUpdate.run, id=f"bench-update-{uuid.uuid4()}", task_queue=queue
                )
                for _ in range(count)
            )
        )
        limit = asyncio.Semaphore(concurrency)
        samples: list[float] = []

        async def one(handle: WorkflowHandle[Any, Any]) -> None:
            async with limit:
                began = time.perf_counter()
                await handle.execute_update("sign", result_type=str)
                samples.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(one(h) for h in handles))
        return samples, time.perf_counter() - began
