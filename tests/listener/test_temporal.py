"""Real Temporal: the listener's live loop signals a booking workflow and starts an orphan one."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from bookme.settings import default_booking_policy
from chain.client import ChainClient
from listener.temporal_sink import TemporalSignalSink
from tests.listener.conftest import MakeListener, insert_booking
from tests.listener.driver import EscrowDriver
from tests.listener.receivers import ReceivingBooking, ReceivingOrphan
from workflows import DATA_CONVERTER
from workflows.constants import booking_workflow_id, orphan_workflow_id

pytestmark = pytest.mark.integration


async def _until(check, limit: float = 30.0):
    async with asyncio.timeout(limit):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.05)


async def test_live_listener_signals_workflows_through_temporal(
    driver: EscrowDriver, engine, make_listener: MakeListener, temporal_client: Client
):
    client = Client(
        temporal_client.service_client,
        namespace=temporal_client.namespace,
        data_converter=DATA_CONVERTER,
    )
    task_queue = f"listener-test-{uuid.uuid4()}"
    booking = str(uuid.uuid4())
    sink = TemporalSignalSink(client, policy=default_booking_policy(), task_queue=task_queue)
    async with (
        Worker(client, task_queue=task_queue, workflows=[ReceivingBooking, ReceivingOrphan]),
        ChainClient([driver.node.ws_url, driver.node.http_url]) as chain,
    ):
        handle = await client.start_workflow(
            ReceivingBooking.run, id=booking_workflow_id(booking), task_queue=task_queue
        )
        listener = make_listener(sink, client=chain, poll_interval=5.0)
        running = asyncio.create_task(listener.run())
        try:
            paid = await driver.pay(booking)
            await insert_booking(engine, booking, paid.chain_booking_id)
            completed = await driver.complete(paid.chain_booking_id)
            stray = await driver.pay()

            received = await _until(lambda: _query_when(handle, ReceivingBooking.get_received, 2))
            orphan = client.get_workflow_handle(orphan_workflow_id(stray.chain_booking_id))
            payments = await _until(lambda: _query_when(orphan, ReceivingOrphan.get_payments, 1))
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        await handle.terminate()
        await orphan.terminate()

    chain_id = driver.node.chain_id
    completion_log = int((await driver.receipt(completed))["logs"][-1]["logIndex"], 16)
    assert [tuple(r) for r in received] == [
        ("payment_confirmed", f"{chain_id}:{paid.tx_hash}:1"),
        ("service_completed", f"{chain_id}:{completed}:{completion_log}"),
    ]
    assert payments == [f"{chain_id}:{stray.tx_hash}:1"]
    assert listener.metrics.leader._value.get() == 0


async def _query_when(handle, query, count: int):
    try:
        value = await handle.query(query)
    except Exception:
        return None
    return value if len(value) >= count else None
