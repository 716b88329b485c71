"""A worker on a fresh task queue with fake activities, over the time-skipping server."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflows.fakes import FakeActivities, make_booking
from workflows import WORKFLOWS, BookingWorkflow, booking_workflow_id
from workflows.sandbox import workflow_runner
from workflows.types import BookingInput, BookingStatus, BookingView

HISTORIES = Path(__file__).parent / "histories"


@dataclass
class BookingHarness:
    env: WorkflowEnvironment
    task_queue: str
    fakes: FakeActivities
    started: list[WorkflowHandle[Any, Any]] = field(default_factory=list)

    async def booking(self, **kwargs: Any) -> BookingInput:
        """A booking scheduled relative to the test server's clock (it runs ahead of ours)."""
        return make_booking(now=await self.env.get_current_time(), **kwargs)

    async def start(self, booking: BookingInput) -> WorkflowHandle[BookingWorkflow, BookingView]:
        handle = await self.env.client.start_workflow(
            BookingWorkflow.run,
            booking,
            id=booking_workflow_id(booking.booking_id),
            task_queue=self.task_queue,
        )
        self.started.append(handle)
        return handle

    async def record_histories(self, name: str) -> None:
        """Write every history of this test for the replay test (BOOKME_RECORD_HISTORIES=1)."""
        HISTORIES.mkdir(exist_ok=True)
        for index, handle in enumerate(self.started):
            history = await handle.fetch_history()
            suffix = f"-{index}" if len(self.started) > 1 else ""
            (HISTORIES / f"{name}{suffix}.json").write_text(history.to_json(), encoding="utf-8")

    async def terminate_leftovers(self) -> None:
        """A workflow left running without its worker would stall the shared server's clock."""
        for handle in self.started:
            described = await handle.describe()
            if described.status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test finished")

    async def wait_for(
        self, handle: WorkflowHandle[BookingWorkflow, BookingView], status: BookingStatus
    ) -> BookingView:
        view = await handle.query(BookingWorkflow.status)
        for _ in range(250):
            if view.status is status:
                return view
            await asyncio.sleep(0.02)
            view = await handle.query(BookingWorkflow.status)
        raise AssertionError(f"booking stayed {view.status} ({view.reason}), wanted {status}")

    async def until(self, predicate: Callable[[], bool], what: str) -> None:
        """Activities run after the transition a query already shows: wait for their effect."""
        for _ in range(500):
            if predicate():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"never happened: {what}")


@pytest.fixture
async def harness(
    time_skipping_env: WorkflowEnvironment, request: pytest.FixtureRequest
) -> AsyncIterator[BookingHarness]:
    fakes = FakeActivities()
    task_queue = f"bookings-test-{uuid.uuid4().hex[:12]}"
    async with Worker(
        time_skipping_env.client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=fakes.all(),
        workflow_runner=workflow_runner(),  # the production sandbox, not a laxer one
    ):
        harness = BookingHarness(env=time_skipping_env, task_queue=task_queue, fakes=fakes)
        try:
            yield harness
        finally:
            await harness.terminate_leftovers()
            if os.environ.get("BOOKME_RECORD_HISTORIES") == "1":
                await harness.record_histories(request.node.name)
