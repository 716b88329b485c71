"""A payment mined after its booking's workflow closed unpaid is refunded as an orphan (issue #18).

Real Postgres, Temporal (a worker running the real activities) and anvil. The listener's
delivery is driven directly with the transactions' logs, as its live loop hands them over.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.reconcile.invariants import check_invariants
from bookme.embedded.anvil import AnvilNode
from bookme.settings import Settings, default_booking_policy
from chain.client import ChainClient
from chain.eip712 import chain_booking_id
from chain.escrow import EscrowReader, OnChainBookingStatus
from chain.events import decode_escrow_logs
from db.engine import make_session_factory
from listener.delivery import Deliverer
from listener.metrics import ListenerMetrics
from listener.observed import ObservedEvent, observed
from listener.store import ListenerStore
from listener.temporal_sink import TemporalSignalSink
from tests.contracts.harness import EscrowHarness
from worker import activity_dependencies, build_worker
from workflows import BookingWorkflow, OrphanPaymentWorkflow, booking_workflow_id
from workflows.client import BookingClient
from workflows.constants import SEND_EMERGENCY_CANCEL, orphan_workflow_id
from workflows.relay_terms import booking_authorization
from workflows.types import (
    AuthorizePaymentRequest,
    BookingInput,
    OrphanResult,
    PaymentAuthorization,
)

pytestmark = pytest.mark.integration
USDC = 10**6
T = TypeVar("T")


@dataclass
class Stack:
    client: Client
    settings: Settings
    escrow: EscrowHarness
    node: AnvilNode


@pytest.fixture
async def stack(
    temporal_client: Client, database_url: str, engine: AsyncEngine, fresh_chain: AnvilNode
) -> AsyncIterator[Stack]:
    """A worker running the real activities on its own task queue (``engine`` migrated the DB)."""
    escrow = EscrowHarness(fresh_chain)
    settings = escrow.settings(
        database_url=database_url, task_queue=f"late-payment-{uuid.uuid4().hex[:10]}"
    )
    async with (
        activity_dependencies(settings) as activities,
        build_worker(temporal_client, settings, activities),
    ):
        yield Stack(client=temporal_client, settings=settings, escrow=escrow, node=fresh_chain)


async def _until(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    for _ in range(600):
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"never saw {what}")


async def _logs(stack: Stack, tx_hash: str) -> list[ObservedEvent]:
    async with ChainClient([stack.node.http_url]) as chain:
        receipt = await chain.get_transaction_receipt(tx_hash)
    assert receipt is not None
    return [
        observed(e)
        for e in decode_escrow_logs(receipt.logs, stack.node.chain_id, stack.escrow.escrow.address)
    ]


async def _closed_unpaid_booking(
    stack: Stack, engine: AsyncEngine
) -> tuple[str, PaymentAuthorization]:
    """A booking whose workflow issued a payment authorization, then closed CANCELLED unpaid.

    The workflow is terminated after its row is set CANCELLED (payment_timeout): its own unpaid
    close waits until it judges the authorization expired, and a payment after that needs the
    chain's clock behind the workflow's, which is the very judgement being moved to chain time
    in the booking workflow. The listener must refund whatever the workflow did, so the test
    builds the state the soak ended in: row CANCELLED, workflow closed, authorization valid.
    """
    booking_id = str(uuid.uuid4())
    r = stack.escrow.roles
    booking = BookingInput(
        booking_id=booking_id,
        chain_booking_id=chain_booking_id(booking_id),
        customer_wallet=r.customer.address,
        provider_wallet=r.provider.address,
        amount_units=100 * USDC,
        scheduled_at=datetime.now(UTC) + timedelta(days=1),
        service_id="svc",
        customer_id="cust",
        provider_id="prov",
        policy=default_booking_policy(confirmations=0, settlement_finality_seconds=0),
    )
    handle = await stack.client.start_workflow(
        BookingWorkflow.run,
        booking,
        id=booking_workflow_id(booking_id),
        task_queue=stack.settings.task_queue,
    )
    auth = await BookingClient.for_booking(stack.client, booking_id).authorize_payment(
        AuthorizePaymentRequest(caller_wallet=booking.customer_wallet)
    )
    await handle.terminate("test: the booking closed unpaid")

    async def cancel_row() -> bool:
        async with engine.begin() as conn:
            result = await conn.execute(
                text(
                    "UPDATE bookings SET status = 'CANCELLED', status_reason = 'payment_timeout'"
                    " WHERE id = :id"
                ),
                {"id": uuid.UUID(booking_id)},
            )
        return bool(result.rowcount)

    await _until(cancel_row, "the booking's row")
    return booking_id, auth


def _deliverer(stack: Stack, engine: AsyncEngine) -> Deliverer:
    # The orphan refund waits for the listener's push longer than this test takes, so its
    # refund is taken from the delivered cancellation, not from polling.
    policy = default_booking_policy(
        confirmations=0, push_grace_seconds=60, settlement_finality_seconds=1
    )
    store = ListenerStore(
        engine, chain_id=stack.node.chain_id, contract_address=stack.escrow.escrow.address
    )
    sink = TemporalSignalSink(stack.client, policy=policy, task_queue=stack.settings.task_queue)
    return Deliverer(
        store, sink, ListenerMetrics(CollectorRegistry()), concurrency=4, cache_size=16
    )


async def test_payment_after_its_booking_closed_unpaid_is_refunded_once(
    stack: Stack, engine: AsyncEngine
):
    booking_id, auth = await _closed_unpaid_booking(stack, engine)
    before = stack.escrow.balances()
    receipt = stack.escrow.pay(booking_authorization(auth), bytes.fromhex(auth.signature[2:]))
    (paid,) = await _logs(stack, "0x" + bytes(receipt["transactionHash"]).hex())
    assert stack.escrow.balances()["escrow"] == before["escrow"] + 100 * USDC
    deliverer = _deliverer(stack, engine)

    await deliverer.deliver([paid])
    await deliverer.deliver([paid])  # re-sent, as after a crash before the checkpoint
    orphan = stack.client.get_workflow_handle(
        orphan_workflow_id(auth.chain_booking_id), result_type=OrphanResult
    )

    async def refund_sent() -> str | None:
        return (await orphan.query(OrphanPaymentWorkflow.status)).refund_tx_hash

    (refunded,) = await _logs(stack, await _until(refund_sent, "the refund sent"))
    await deliverer.deliver([refunded])
    result = await orphan.result()
    await deliverer.deliver([paid, refunded])  # a replay after the refund finished

    assert result.refunded
    cbid = auth.chain_booking_id
    assert stack.escrow.booking(cbid)[0] == OnChainBookingStatus.CANCELLED
    assert stack.escrow.balances() == before
    signals = [
        e.workflow_execution_signaled_event_attributes.signal_name
        async for e in orphan.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    # Started once by the payment; the refund's cancellation reached it through the listener.
    assert signals.count("booking_cancelled") == 1
    sends = [
        e
        async for e in orphan.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == SEND_EMERGENCY_CANCEL
    ]
    assert len(sends) == 1
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT event_type, status, status_reason, booking_id::text AS booking_id"
                    " FROM blockchain_events ORDER BY block_number, log_index"
                )
            )
        ).all()
    assert [(r.event_type, r.status, r.booking_id) for r in rows] == [
        ("BookingCreatedAndPaid", "PROCESSED", booking_id),
        ("BookingCancelled", "PROCESSED", booking_id),
    ]
    assert rows[0].status_reason == (
        f"orphan: orphan_refunded (late payment for closed booking {booking_id})"
    )
    # The reconciler counts the payment and its refund as the orphan's, not the booking's.
    async with ChainClient([stack.node.http_url]) as chain:
        reader = EscrowReader(
            chain, stack.escrow.escrow.address, usdc_address=stack.escrow.usdc.address
        )
        report = await check_invariants(
            make_session_factory(engine), reader, received_grace=timedelta(0)
        )
    assert report.details() == {name: [] for name in report.results}
