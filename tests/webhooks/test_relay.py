"""The relay workflow on a real Temporal server, as the worker runs it: events flow by themselves."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from bookme.schedules import ensure_webhook_relay
from bookme.settings import Settings
from tests.webhooks.flows import complete, paid_booking
from workflows.webhook_relay import (
    DISPATCH_WEBHOOKS,
    DispatchRequest,
    DispatchResult,
    RelayInput,
    WebhookRelayWorkflow,
)

pytestmark = pytest.mark.integration


async def test_the_worker_s_relay_delivers_without_being_asked(
    temporal_client, store, receiver, dispatcher, add_endpoint
):
    await add_endpoint(receiver.url)
    task_queue = f"webhooks-{uuid.uuid4()}"
    workflow_id = f"webhook-relay-{uuid.uuid4()}"
    settings = Settings(_env_file=None, task_queue=task_queue, webhook_poll_interval_seconds=0.2)
    async with Worker(
        temporal_client,
        task_queue=task_queue,
        workflows=[WebhookRelayWorkflow],
        activities=[dispatcher.dispatch_webhooks],
    ):
        await ensure_webhook_relay(temporal_client, settings, workflow_id=workflow_id)
        await ensure_webhook_relay(temporal_client, settings, workflow_id=workflow_id)  # idempotent
        booking = await paid_booking(store)
        await complete(store, booking)
        for _ in range(300):
            if len(receiver.delivered()) == 2:
                break
            await asyncio.sleep(0.05)
        handle = temporal_client.get_workflow_handle(workflow_id)
        await handle.terminate("test finished")
    assert [e["type"] for e in receiver.delivered()] == ["booking.paid", "booking.completed"]


async def test_the_relay_outlives_a_failing_dispatch_and_continues_as_new(time_skipping_env):
    env = time_skipping_env
    calls: list[DispatchRequest] = []

    @activity.defn(name=DISPATCH_WEBHOOKS)
    async def dispatch(request: DispatchRequest) -> DispatchResult:
        calls.append(request)
        if len(calls) == 1:
            raise ApplicationError("postgres is down", non_retryable=True)
        return DispatchResult()

    task_queue = f"relay-{uuid.uuid4()}"
    async with Worker(
        env.client, task_queue=task_queue, workflows=[WebhookRelayWorkflow], activities=[dispatch]
    ):
        handle = await env.client.start_workflow(
            WebhookRelayWorkflow.run,
            RelayInput(poll_interval_seconds=60, rounds_before_continue=2),
            id=f"webhook-relay-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        for _ in range(50):
            if len(calls) >= 5:
                break
            await env.sleep(61)
        described = await handle.describe()
        await handle.terminate("test finished")
    assert len(calls) >= 5  # the failed round was followed by the next ones
    assert described.run_id != handle.result_run_id  # continued as new, still the same relay
