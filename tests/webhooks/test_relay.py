"""The relay workflow on a real Temporal server, as the worker runs it: events flow by themselves."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.worker import Worker

from bookme.schedules import ensure_webhook_relay
from bookme.settings import Settings
from tests.webhooks.flows import complete, paid_booking
from workflows.webhook_relay import WebhookRelayWorkflow

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
