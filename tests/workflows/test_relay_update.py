"""The booking workflow's ``relay_payment`` update over a fake relay activity (time skipping):
one relay per booking however many requests arrive at once, refusals that leave the booking
payable, and the status moved by the chain's event only."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflows.conftest import BookingHarness
from tests.workflows.fakes import CUSTOMER, PROVIDER, FakeActivities, payment_event
from workflows import WORKFLOWS, BookingWorkflow
from workflows import constants as c
from workflows.errors import RelayRefused
from workflows.sandbox import workflow_runner
from workflows.types import AuthorizePaymentRequest, BookingStatus
from workflows.types.relay import RelayPaymentRequest, RelayTxRequest, RelayTxResult

RELAY_TX = "0x" + "7e" * 32


@dataclass
class FakeRelay:
    """The relay activity: records each call, waits for ``release``, or refuses with a code."""

    calls: list[RelayTxRequest] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    refuse_with: str | None = None

    @activity.defn(name=c.RELAY_PAYMENT)
    async def relay_payment(self, request: RelayTxRequest) -> RelayTxResult:
        self.calls.append(request)
        if self.refuse_with is not None:
            raise RelayRefused("the payment would fail on chain: expired", self.refuse_with)
        await self.release.wait()
        return RelayTxResult(tx_hash=RELAY_TX, gas_used=90_000, gas_cost_wei=90_000 * 10**9)


@pytest.fixture
async def relay(
    time_skipping_env: WorkflowEnvironment,
) -> AsyncIterator[tuple[BookingHarness, FakeRelay]]:
    fakes, fake_relay = FakeActivities(), FakeRelay()
    task_queue = f"relay-test-{uuid.uuid4().hex[:12]}"
    async with Worker(
        time_skipping_env.client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[*fakes.all(), fake_relay.relay_payment],
        workflow_runner=workflow_runner(),
    ):
        harness = BookingHarness(env=time_skipping_env, task_queue=task_queue, fakes=fakes)
        try:
            yield harness, fake_relay
        finally:
            await harness.terminate_leftovers()


def _request(wallet: str = CUSTOMER) -> RelayPaymentRequest:
    return RelayPaymentRequest(
        caller_wallet=wallet, signature="0x" + "ab" * 65, valid_after=0, valid_before=2**40
    )


async def test_requests_at_once_relay_one_transaction_and_the_chain_moves_the_status(relay):
    harness, fake = relay
    booking = await harness.booking()
    handle = await harness.start(booking)
    auth = await handle.execute_update(
        BookingWorkflow.authorize_payment, AuthorizePaymentRequest(caller_wallet=CUSTOMER)
    )
    calls = [
        asyncio.create_task(handle.execute_update(BookingWorkflow.relay_payment, _request()))
        for _ in range(3)
    ]
    await harness.until(lambda: len(fake.calls) == 1, "the relay activity started")
    fake.release.set()
    answers = await asyncio.gather(*calls)

    assert len(fake.calls) == 1
    assert fake.calls[0].authorization == auth  # the transfer pays the live authorization
    assert {a.tx_hash for a in answers} == {RELAY_TX}
    assert sorted(a.replayed for a in answers) == [False, True, True]
    view = await handle.query(BookingWorkflow.status)
    assert view.status is BookingStatus.PENDING_PAYMENT  # sent is not paid
    assert view.monitored_tx_hash == RELAY_TX

    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking, tx=RELAY_TX))
    await harness.wait_for(handle, BookingStatus.PAID)
    again = await handle.execute_update(BookingWorkflow.relay_payment, _request())
    assert (again.tx_hash, again.replayed) == (RELAY_TX, True)
    assert len(fake.calls) == 1


async def test_a_refused_relay_leaves_the_booking_payable_and_strangers_are_refused(relay):
    harness, fake = relay
    handle = await harness.start(await harness.booking())
    await handle.execute_update(
        BookingWorkflow.authorize_payment, AuthorizePaymentRequest(caller_wallet=CUSTOMER)
    )
    with pytest.raises(WorkflowUpdateFailedError) as stranger:
        await handle.execute_update(BookingWorkflow.relay_payment, _request(PROVIDER))
    assert isinstance(stranger.value.cause, ApplicationError)
    assert stranger.value.cause.type == "WrongCaller"
    assert fake.calls == []

    fake.refuse_with = "relay_simulation_failed"
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(BookingWorkflow.relay_payment, _request())
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.details[0]) == (c.RELAY_REFUSED, "relay_simulation_failed")
    assert len(fake.calls) == 1  # refused for good: not retried

    fake.refuse_with = None
    fake.release.set()
    relayed = await handle.execute_update(BookingWorkflow.relay_payment, _request())
    assert (relayed.tx_hash, relayed.replayed) == (RELAY_TX, False)
    assert (await handle.query(BookingWorkflow.status)).status is BookingStatus.PENDING_PAYMENT
