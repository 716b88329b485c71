"""Full lifecycles on real Temporal + Postgres + anvil, with the real activities and two worker
replicas on one task queue (each its own sender on the one operator key).

No listener runs here: every chain event reaches the workflow through the polling path
(``observe_booking``), which builds the same signal payload the listener will send.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import select
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.runtime import Runtime, TelemetryConfig

from bookme.embedded.anvil import AnvilNode
from bookme.settings import Settings, default_booking_policy
from chain.client import ChainClient
from chain.eip712 import chain_booking_id
from chain.events import decode_escrow_logs
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade_async
from db.models import BlockchainEvent, Booking, BookingEvent
from db.settlement_models import PlatformFee, ProviderEarning, Refund
from db.tx_ledger_models import LedgerTransaction
from tests.contracts.harness import EscrowHarness
from tests.workflows.fakes import onchain_cancellation
from worker import activity_dependencies, build_worker
from workflows import (
    BookingWorkflow,
    OrphanPaymentWorkflow,
    booking_workflow_id,
    orphan_workflow_id,
)
from workflows.event_codec import signal_from_event
from workflows.relay_terms import booking_authorization
from workflows.types import (
    AuthorizePaymentRequest,
    BookingInput,
    BookingStatus,
    BookingView,
    CancellationRequest,
    EmergencyCancelRequest,
    OrphanPaymentInput,
    PartyRole,
    PaymentAuthorization,
    ReportTransactionRequest,
    TransactionKind,
)
from workflows.types import CancellationAuthorization as SignedCancellation

pytestmark = pytest.mark.integration
S = BookingStatus
USDC = 10**6


@dataclass
class Stack:
    client: Client
    task_queue: str
    escrow: EscrowHarness
    database_url: str
    replicas: tuple[CollectorRegistry, CollectorRegistry]

    def booking(self, *, scheduled_at: datetime, auto_complete_delay: int = 7200) -> BookingInput:
        booking_id = str(uuid.uuid4())
        r = self.escrow.roles
        return BookingInput(
            booking_id=booking_id,
            chain_booking_id=chain_booking_id(booking_id),
            customer_wallet=r.customer.address,
            provider_wallet=r.provider.address,
            amount_units=100 * USDC,
            scheduled_at=scheduled_at,
            service_id="svc",
            customer_id="cust",
            provider_id="prov",
            policy=default_booking_policy(
                confirmations=0,
                push_grace_seconds=0,  # no listener here: poll from the first second
                poll_interval_seconds=1,
                monitoring_window_seconds=120,
                auto_complete_delay_seconds=auto_complete_delay,
                settlement_finality_seconds=0,  # these tests await the result
            ),
        )

    async def start(self, booking: BookingInput) -> WorkflowHandle[BookingWorkflow, BookingView]:
        return await self.client.start_workflow(
            BookingWorkflow.run,
            booking,
            id=booking_workflow_id(booking.booking_id),
            task_queue=self.task_queue,
        )

    def pay(self, auth: PaymentAuthorization) -> str:
        onchain = booking_authorization(auth)
        receipt = self.escrow.pay(onchain, bytes.fromhex(auth.signature[2:]))
        return "0x" + bytes(receipt["transactionHash"]).hex()

    def cancel(self, cancel: SignedCancellation) -> str:
        """The customer sends the signed cancellation; returns its transaction hash."""
        onchain = onchain_cancellation(cancel)
        signature = bytes.fromhex(cancel.signature[2:])
        receipt = self.escrow.cancel(onchain, self.escrow.roles.customer, signature)
        return "0x" + bytes(receipt["transactionHash"]).hex()


@pytest.fixture
async def stack(
    temporal, temporal_client: Client, database_url: str, fresh_chain: AnvilNode
) -> AsyncIterator[Stack]:
    await upgrade_async(database_url)
    escrow = EscrowHarness(fresh_chain)
    r = escrow.roles
    settings = Settings(
        database_url=database_url,
        rpc_urls=[fresh_chain.http_url],
        chain_id=fresh_chain.chain_id,
        escrow_address=escrow.escrow.address,
        signer_private_key=SecretStr(r.signer.private_key),
        operator_private_key=SecretStr(r.operator.private_key),
        confirmations=0,
        task_queue=f"bookings-it-{uuid.uuid4().hex[:10]}",
    )
    replicas = (CollectorRegistry(), CollectorRegistry())
    # Its own runtime too: the SDK refuses two workers of one queue in one runtime.
    other_client = await Client.connect(
        temporal.address,
        namespace=temporal.namespace,
        runtime=Runtime(telemetry=TelemetryConfig()),
    )
    # Two worker replicas on one task queue, each with its own engine, chain client and sender
    # on the same operator key, as two `python worker.py` processes would be.
    async with (
        activity_dependencies(settings, registry=replicas[0]) as activities,
        activity_dependencies(settings, registry=replicas[1]) as other_activities,
        build_worker(temporal_client, settings, activities),
        build_worker(other_client, settings, other_activities),
    ):
        yield Stack(
            client=temporal_client,
            task_queue=settings.task_queue,
            escrow=escrow,
            database_url=database_url,
            replicas=replicas,
        )


async def _db_state(database_url: str, booking_id: str):
    engine = make_engine(database_url, pool_size=1)
    try:
        sessions = make_session_factory(engine)
        async with sessions() as session:
            bid = uuid.UUID(booking_id)
            row = (await session.execute(select(Booking).where(Booking.id == bid))).scalar_one()
            kinds = (
                (
                    await session.execute(
                        select(BookingEvent.kind)
                        .where(BookingEvent.booking_id == bid)
                        .order_by(BookingEvent.id)
                    )
                )
                .scalars()
                .all()
            )
            earnings = (
                (
                    await session.execute(
                        select(ProviderEarning).where(ProviderEarning.booking_id == bid)
                    )
                )
                .scalars()
                .all()
            )
            fees = (
                (await session.execute(select(PlatformFee).where(PlatformFee.booking_id == bid)))
                .scalars()
                .all()
            )
            refunds = (
                (await session.execute(select(Refund).where(Refund.booking_id == bid)))
                .scalars()
                .all()
            )
        return row, list(kinds), earnings, fees, refunds
    finally:
        await engine.dispose()


async def test_pay_then_customer_completes(stack):
    before = stack.escrow.balances()
    booking = stack.booking(scheduled_at=datetime.now(UTC) + timedelta(days=2))
    handle = await stack.start(booking)
    auth = await handle.execute_update(
        BookingWorkflow.authorize_payment,
        AuthorizePaymentRequest(caller_wallet=booking.customer_wallet),
    )
    tx = stack.pay(auth)
    await handle.execute_update(
        BookingWorkflow.report_transaction,
        ReportTransactionRequest(
            tx_hash=tx,
            kind=TransactionKind.PAYMENT,
            role=PartyRole.CUSTOMER,
            wallet=booking.customer_wallet,
        ),
    )
    r = stack.escrow.roles
    receipt = stack.escrow.complete(booking.chain_booking_id, r.customer)
    done_tx = "0x" + bytes(receipt["transactionHash"]).hex()
    # PAID first (the payment window), then the reported completion is polled
    view = await handle.query(BookingWorkflow.status)
    while view.status is S.PENDING_PAYMENT:
        await asyncio.sleep(0.05)
        view = await handle.query(BookingWorkflow.status)
    await handle.execute_update(
        BookingWorkflow.report_transaction,
        ReportTransactionRequest(
            tx_hash=done_tx,
            kind=TransactionKind.COMPLETION,
            role=PartyRole.CUSTOMER,
            wallet=booking.customer_wallet,
        ),
    )
    result = await handle.result()
    assert result.status is S.COMPLETED

    after = stack.escrow.balances()
    assert before["customer"] - after["customer"] == 100 * USDC
    assert after["provider"] - before["provider"] == 90 * USDC
    assert after["treasury"] - before["treasury"] == 10 * USDC
    assert after["escrow"] == before["escrow"]

    row, kinds, earnings, fees, _ = await _db_state(stack.database_url, booking.booking_id)
    assert row.status.value == "COMPLETED"
    assert row.blockchain_tx_hash == tx
    assert row.completion_tx_hash == done_tx
    assert kinds == ["created", "payment_confirmed", "service_completed"]
    assert [e.amount_units for e in earnings] == [90 * USDC]
    assert [f.platform_amount_units for f in fees] == [10 * USDC]


async def test_pay_then_auto_complete_by_the_operator(stack):
    before = stack.escrow.balances()
    # release time (scheduled + delay) a few seconds from now
    booking = stack.booking(
        scheduled_at=datetime.now(UTC) - timedelta(hours=2) + timedelta(seconds=8)
    )
    handle = await stack.start(booking)
    auth = await handle.execute_update(
        BookingWorkflow.authorize_payment,
        AuthorizePaymentRequest(caller_wallet=booking.customer_wallet),
    )
    stack.pay(auth)  # not reported: the authorization's window finds it on chain
    # anvil mines only on demand: make sure the chain's clock has passed the release time
    stack.escrow.travel(30)
    result = await handle.result()
    assert result.status is S.COMPLETED
    assert result.completion_tx_hash is not None
    after = stack.escrow.balances()
    assert after["provider"] - before["provider"] == 90 * USDC
    assert after["treasury"] - before["treasury"] == 10 * USDC
    row, kinds, earnings, _, _ = await _db_state(stack.database_url, booking.booking_id)
    assert kinds == ["created", "payment_confirmed", "auto_complete_sent", "service_completed"]
    assert row.completion_tx_hash == result.completion_tx_hash
    assert len(earnings) == 1


async def test_pay_then_late_customer_cancellation_splits(stack):
    before = stack.escrow.balances()
    booking = stack.booking(scheduled_at=datetime.now(UTC) + timedelta(hours=3))
    handle = await stack.start(booking)
    auth = await handle.execute_update(
        BookingWorkflow.authorize_payment,
        AuthorizePaymentRequest(caller_wallet=booking.customer_wallet),
    )
    stack.pay(auth)
    view = await handle.query(BookingWorkflow.status)
    while view.status is S.PENDING_PAYMENT:
        await asyncio.sleep(0.05)
        view = await handle.query(BookingWorkflow.status)
    result = await handle.execute_update(
        BookingWorkflow.request_cancellation,
        CancellationRequest(role=PartyRole.CUSTOMER, wallet=booking.customer_wallet, reason="late"),
    )
    assert result.authorization is not None
    stack.cancel(result.authorization)
    final = await handle.result()
    assert final.status is S.CANCELLED
    after = stack.escrow.balances()
    assert before["customer"] - after["customer"] == 50 * USDC
    assert after["provider"] - before["provider"] == 50 * USDC
    assert after["treasury"] == before["treasury"]
    row, kinds, _, _, refunds = await _db_state(stack.database_url, booking.booking_id)
    assert row.status.value == "CANCELLED"
    assert kinds == ["created", "payment_confirmed", "cancellation_authorized", "booking_cancelled"]
    assert [(x.customer_amount_units, x.provider_amount_units) for x in refunds] == [
        (50 * USDC, 50 * USDC)
    ]


async def test_unpaid_booking_times_out(stack):
    booking = stack.booking(scheduled_at=datetime.now(UTC) + timedelta(days=1))
    booking = dataclasses.replace(
        booking, policy=dataclasses.replace(booking.policy, payment_deadline_seconds=3)
    )
    handle = await stack.start(booking)
    result = await handle.result()
    assert result.status is S.CANCELLED
    assert result.reason == "payment_timeout"
    row, kinds, _, _, refunds = await _db_state(stack.database_url, booking.booking_id)
    assert row.status.value == "CANCELLED"
    assert row.status_reason == "payment_timeout"
    assert kinds == ["created", "payment_timeout"]
    assert refunds == []


async def test_orphan_payment_is_refunded_by_the_operator(stack, fresh_chain):
    escrow = stack.escrow
    before = escrow.balances()
    # A booking this service never created. Its own id: the harness numbers bookings from 1 in
    # every test, and the session's Temporal server may still run an orphan workflow of an
    # earlier test for that id (the rebuild test's, on a task queue nobody polls now), which
    # USE_EXISTING below would join and wait on forever.
    auth = escrow.booking_auth(booking_id=chain_booking_id(str(uuid.uuid4())))
    receipt = escrow.pay(auth)
    tx = "0x" + bytes(receipt["transactionHash"]).hex()
    async with ChainClient([fresh_chain.http_url]) as client:
        raw = await client.get_transaction_receipt(tx)
    assert raw is not None
    (paid,) = [
        signal_from_event(e)
        for e in decode_escrow_logs(raw.logs, fresh_chain.chain_id, escrow.escrow.address)
    ]
    orphan = OrphanPaymentInput(
        event=paid,
        policy=default_booking_policy(
            confirmations=0,
            push_grace_seconds=1,
            poll_interval_seconds=1,
            settlement_finality_seconds=0,  # the test awaits the result
        ),
    )
    handle = await stack.client.start_workflow(
        OrphanPaymentWorkflow.run,
        orphan,
        id=orphan_workflow_id(paid.chain_booking_id),
        task_queue=stack.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    result = await handle.result()
    assert result.refunded
    after = escrow.balances()
    assert after["customer"] == before["customer"]
    assert after["escrow"] == before["escrow"]
    engine = make_engine(stack.database_url, pool_size=1)
    try:
        async with make_session_factory(engine)() as session:
            rows = (
                (await session.execute(select(BlockchainEvent).order_by(BlockchainEvent.id)))
                .scalars()
                .all()
            )
    finally:
        await engine.dispose()
    assert [(r.event_type, r.status.value) for r in rows] == [
        ("BookingCreatedAndPaid", "PROCESSED"),
        ("BookingCancelled", "PROCESSED"),
    ]
    assert rows[0].status_reason == "orphan: orphan_refunded"
    assert rows[0].booking_id is None


async def _wait_status(
    handle: WorkflowHandle[BookingWorkflow, BookingView], status: BookingStatus
) -> BookingView:
    return await _wait_view(handle, lambda v: v.status is status, wanted=status.value)


async def _wait_view(
    handle: WorkflowHandle[BookingWorkflow, BookingView],
    ready: Callable[[BookingView], bool],
    wanted: str = "the awaited view",
) -> BookingView:
    for _ in range(600):
        view = await handle.query(BookingWorkflow.status)
        if ready(view):
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(
        f"booking stayed {view.status} after {view.transitions} transitions, wanted {wanted}"
    )


async def test_completion_reorged_into_a_later_block_is_applied_again(stack, fresh_chain):
    """A real reorg moves the completion to another block: back to PAID, then COMPLETED once."""
    booking = stack.booking(scheduled_at=datetime.now(UTC) + timedelta(days=2))
    booking = dataclasses.replace(
        booking, policy=dataclasses.replace(booking.policy, settlement_finality_seconds=120)
    )
    handle = await stack.start(booking)
    try:
        await _pay(stack, booking, handle)
        receipt = stack.escrow.complete(booking.chain_booking_id, stack.escrow.roles.customer)
        done_tx = "0x" + bytes(receipt["transactionHash"]).hex()
        await handle.execute_update(
            BookingWorkflow.report_transaction,
            ReportTransactionRequest(
                tx_hash=done_tx,
                kind=TransactionKind.COMPLETION,
                role=PartyRole.CUSTOMER,
                wallet=booking.customer_wallet,
            ),
        )
        await _wait_status(handle, S.COMPLETED)

        async with ChainClient([fresh_chain.http_url]) as chain:
            raw = await chain.get_transaction_receipt(done_tx)
            assert raw is not None
            (applied,) = [
                signal_from_event(e)
                for e in decode_escrow_logs(
                    raw.logs, fresh_chain.chain_id, stack.escrow.escrow.address
                )
            ]
            # Replace the completion's block and the next; the completion lands in the second.
            await chain.request("evm_mine", [])
            signed = await chain.request("eth_getRawTransactionByHash", [done_tx])
            await chain.request("anvil_reorg", [2, [[signed, 1]]])
            moved = await chain.get_transaction_receipt(done_tx)
            assert moved is not None
            assert moved.block_number == raw.block_number + 1
        before = (await handle.query(BookingWorkflow.status)).transitions
        # What the listener sends once it sees the completion's block leave the chain.
        await handle.signal(BookingWorkflow.chain_event_reverted, applied)
        # Back to PAID, then COMPLETED again when the window polls the chain: two transitions.
        # The PAID interlude can be shorter than a query's poll, so count transitions instead of
        # waiting to see it (the settlement_reorged row below proves it happened).
        view = await _wait_view(
            handle, lambda v: v.transitions >= before + 2 and v.status is S.COMPLETED
        )
        # Alone in its block again, it kept its log index: the same identity, applied anew.
        assert view.applied_event_keys.count(applied.key) == 1

        row, kinds, earnings, fees, _ = await _db_state(stack.database_url, booking.booking_id)
        assert row.status.value == "COMPLETED"
        settled = [k for k in kinds if k in ("service_completed", "settlement_reorged")]
        assert settled == ["service_completed", "settlement_reorged", "service_completed"]
        live = [e for e in earnings if e.reverted_at is None]
        assert [e.amount_units for e in live] == [90 * USDC]
        assert sum(f.platform_amount_units for f in fees if f.reverted_at is None) == 10 * USDC
        engine = make_engine(stack.database_url, pool_size=1)
        try:
            async with make_session_factory(engine)() as session:
                marks = (
                    await session.execute(
                        select(BlockchainEvent.block_number, BlockchainEvent.status).where(
                            BlockchainEvent.tx_hash == done_tx.lower()
                        )
                    )
                ).all()
        finally:
            await engine.dispose()
        assert sorted((n, s.value) for n, s in marks)[-1] == (
            raw.block_number + 1,
            "PROCESSED",
        )
    finally:
        await handle.terminate("test finished; the finality period would run 120 s")


async def _pay(stack, booking, handle):
    """Authorize, pay and report the payment; returns once the booking is PAID."""
    auth = await handle.execute_update(
        BookingWorkflow.authorize_payment,
        AuthorizePaymentRequest(caller_wallet=booking.customer_wallet),
    )
    await handle.execute_update(
        BookingWorkflow.report_transaction,
        ReportTransactionRequest(
            tx_hash=stack.pay(auth),
            kind=TransactionKind.PAYMENT,
            role=PartyRole.CUSTOMER,
            wallet=booking.customer_wallet,
        ),
    )
    await _wait_status(handle, S.PAID)


async def _paid(stack, booking):
    handle = await stack.start(booking)
    await _pay(stack, booking, handle)
    return handle


async def test_two_replicas_send_auto_completions_and_refunds_at_once_on_consecutive_nonces(stack):
    """Both replicas send from the one operator key at the same moment: every booking settles,
    each with one transaction, and the key's nonces run on without a gap, a collision or a
    replacement."""
    operator = stack.escrow.roles.operator.address
    start = stack.escrow.w3.eth.get_transaction_count(operator)
    release = datetime.now(UTC) + timedelta(seconds=20)
    completing = [
        stack.booking(scheduled_at=release - timedelta(hours=2)) for _ in range(6)
    ]  # auto-completed by the operator at `release`
    refunded = [stack.booking(scheduled_at=datetime.now(UTC) + timedelta(days=2)) for _ in range(2)]
    handles = await asyncio.gather(*(_paid(stack, b) for b in completing + refunded))
    stack.escrow.travel(60)  # the chain's clock past every release time
    await asyncio.sleep(max(0.0, (release - datetime.now(UTC)).total_seconds()))
    await asyncio.gather(
        *(
            h.execute_update(
                BookingWorkflow.emergency_cancel,
                EmergencyCancelRequest(operator="ops@bookme", reason="fraud report"),
            )
            for h in handles[len(completing) :]
        )
    )
    results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 120)
    assert [r.status for r in results] == [S.COMPLETED] * 6 + [S.CANCELLED] * 2

    assert stack.escrow.w3.eth.get_transaction_count(operator) == start + 8
    engine = make_engine(stack.database_url, pool_size=1)
    try:
        async with make_session_factory(engine)() as session:
            rows = list(
                await session.scalars(select(LedgerTransaction).order_by(LedgerTransaction.nonce))
            )
    finally:
        await engine.dispose()
    assert [row.nonce for row in rows] == list(range(start, start + 8))
    assert all(row.outcome == "succeeded" and len(row.tx_hashes) == 1 for row in rows)
    sent = [
        r.get_sample_value("bookme_tx_sent_total", {"sender": operator}) or 0
        for r in stack.replicas
    ]
    assert sum(sent) == 8, sent
