"""An orphan payment is refunded once, whatever the number of deliveries and reorgs."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bookme.settings import default_booking_policy
from tests.workflows.conftest import BookingHarness
from tests.workflows.fakes import FakeActivities, cancellation_event, make_booking, payment_event
from workflows import WORKFLOWS, OrphanPaymentWorkflow, orphan_workflow_id
from workflows import constants as c
from workflows.types import ChainEventSignal, OrphanPaymentInput, OrphanRecord


async def _start(harness, orphan):
    handle = await harness.env.client.start_workflow(
        OrphanPaymentWorkflow.run,
        orphan,
        id=orphan_workflow_id(orphan.event.chain_booking_id),
        task_queue=harness.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    harness.started.append(handle)
    return handle


async def test_orphan_payment_is_refunded_once_via_the_pushed_event(harness):
    unknown = make_booking(now=await harness.env.get_current_time())
    orphan = OrphanPaymentInput(event=payment_event(unknown), policy=default_booking_policy())
    first = await _start(harness, orphan)
    second = await _start(harness, orphan)  # the listener delivered it twice
    assert second.result_run_id == first.result_run_id
    await first.signal(OrphanPaymentWorkflow.booking_cancelled, cancellation_event(unknown))
    result = await first.result()
    assert result.refunded
    assert len(harness.fakes.refunds_sent) == 1
    assert harness.fakes.refunds_sent[0].reason == "orphan_refund"
    assert [r.action for r in harness.fakes.orphan_records] == [
        "orphan_payment_detected",
        "orphan_refund_sent",
        "orphan_refunded",
    ]


async def test_orphan_refund_found_by_polling(harness):
    unknown = make_booking(now=await harness.env.get_current_time())
    handle = await _start(
        harness, OrphanPaymentInput(event=payment_event(unknown), policy=default_booking_policy())
    )
    harness.fakes.chain_events = [cancellation_event(unknown)]
    await harness.env.sleep(timedelta(seconds=31))
    result = await handle.result()
    assert result.refunded
    assert harness.fakes.observations[0].tx_hash == result.refund_tx_hash


def _reincluded(event: ChainEventSignal) -> ChainEventSignal:
    """The same payment (same identity) mined again in another block after a reorg."""
    identity = dataclasses.replace(
        event.identity,
        block_number=event.identity.block_number + 1,
        block_hash="0x" + "ab" * 32,
    )
    return dataclasses.replace(event, identity=identity)


async def _second_refund_lands(harness, handle, unknown) -> list[str]:
    """The refund is asked for again, its event arrives, the workflow ends refunded."""
    await harness.until(lambda: len(harness.fakes.refunds_sent) == 2, "refund asked for again")
    await handle.signal(OrphanPaymentWorkflow.booking_cancelled, cancellation_event(unknown))
    assert (await handle.result()).refunded
    return [r.action for r in harness.fakes.orphan_records]


async def test_payment_reorged_away_before_the_refund_is_never_refunded(harness):
    unknown = make_booking(now=await harness.env.get_current_time())
    paid = payment_event(unknown)
    # The revert reaches the workflow together with its start, before any refund is sent.
    handle = await harness.env.client.start_workflow(
        OrphanPaymentWorkflow.run,
        OrphanPaymentInput(event=paid, policy=default_booking_policy()),
        id=orphan_workflow_id(unknown.chain_booking_id),
        task_queue=harness.task_queue,
        start_signal="chain_event_reverted",
        start_signal_args=[paid],
    )
    harness.started.append(handle)
    result = await handle.result()
    assert not result.refunded
    assert harness.fakes.refunds_sent == []
    records = harness.fakes.orphan_records
    assert [r.action for r in records] == [
        "orphan_payment_detected",
        "orphan_payment_reorged",
        "orphan_payment_vanished",
    ]
    assert not records[-1].payment_live
    # It looked for a re-inclusion of that very transaction before giving up.
    assert {o.tx_hash for o in harness.fakes.observations} == {paid.identity.tx_hash}


async def test_reorged_payment_that_comes_back_is_refunded_once_it_is_back(harness):
    unknown = make_booking(now=await harness.env.get_current_time())
    paid = payment_event(unknown)
    handle = await _start(harness, OrphanPaymentInput(event=paid, policy=default_booking_policy()))
    fakes = harness.fakes
    await harness.until(lambda: len(fakes.refunds_sent) == 1, "first refund sent")
    await handle.signal(OrphanPaymentWorkflow.chain_event_reverted, paid)
    await harness.until(
        lambda: "orphan_payment_reorged" in [r.action for r in fakes.orphan_records],
        "payment reorg recorded",
    )
    assert fakes.orphan_records[-1].refund_tx_hash == "0x" + "e0" * 32
    await handle.signal(OrphanPaymentWorkflow.payment_confirmed, _reincluded(paid))
    assert await _second_refund_lands(harness, handle, unknown) == [
        "orphan_payment_detected",
        "orphan_refund_sent",
        "orphan_payment_reorged",
        "orphan_payment_reincluded",
        "orphan_refund_sent",
        "orphan_refunded",
    ]
    assert fakes.orphan_records[-1].payment.identity.block_hash == "0x" + "ab" * 32
    assert fakes.orphan_records[-1].payment_live


async def test_refund_reorged_while_being_recorded_is_sent_again(gated):
    unknown = make_booking(now=await gated.env.get_current_time())
    handle = await _start(
        gated, OrphanPaymentInput(event=payment_event(unknown), policy=default_booking_policy())
    )
    fakes = gated.fakes
    refund = cancellation_event(unknown)
    await handle.signal(OrphanPaymentWorkflow.booking_cancelled, refund)
    await asyncio.wait_for(fakes.reached.wait(), 30)
    await handle.signal(OrphanPaymentWorkflow.chain_event_reverted, refund)
    fakes.release.set()
    assert await _second_refund_lands(gated, handle, unknown) == [
        "orphan_payment_detected",
        "orphan_refund_sent",
        "orphan_refunded",
        "orphan_refund_reorged",
        "orphan_refund_sent",
        "orphan_refunded",
    ]
    assert fakes.orphan_records[3].refund is None


async def test_revert_of_an_unrelated_event_changes_nothing(harness):
    unknown = make_booking(now=await harness.env.get_current_time())
    handle = await _start(
        harness, OrphanPaymentInput(event=payment_event(unknown), policy=default_booking_policy())
    )
    await handle.signal(OrphanPaymentWorkflow.chain_event_reverted, payment_event(unknown))
    await handle.signal(OrphanPaymentWorkflow.booking_cancelled, cancellation_event(unknown))
    result = await handle.result()
    assert result.refunded
    assert len(harness.fakes.refunds_sent) == 1
    assert "orphan_payment_reorged" not in [r.action for r in harness.fakes.orphan_records]


@dataclass(eq=False)
class GatedFakes(FakeActivities):
    """Holds the first ``orphan_refunded`` record until the test lets it finish."""

    reached: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @activity.defn(name=c.RECORD_ORPHAN)
    async def record_orphan(self, record: OrphanRecord) -> None:
        self.orphan_records.append(record)
        if record.action == "orphan_refunded" and not self.reached.is_set():
            self.reached.set()
            await self.release.wait()


@pytest.fixture
async def gated(time_skipping_env: WorkflowEnvironment) -> AsyncIterator[BookingHarness]:
    fakes = GatedFakes()
    task_queue = f"orphan-test-{uuid.uuid4().hex[:12]}"
    async with Worker(
        time_skipping_env.client, task_queue=task_queue, workflows=WORKFLOWS, activities=fakes.all()
    ):
        harness = BookingHarness(env=time_skipping_env, task_queue=task_queue, fakes=fakes)
        try:
            yield harness
        finally:
            fakes.release.set()
            await harness.terminate_leftovers()


async def test_refund_reorged_after_it_was_recorded_is_sent_again(harness):
    unknown = make_booking(now=await harness.env.get_current_time())
    handle = await _start(
        harness, OrphanPaymentInput(event=payment_event(unknown), policy=default_booking_policy())
    )
    refund = cancellation_event(unknown)
    await handle.signal(OrphanPaymentWorkflow.booking_cancelled, refund)

    def actions() -> list[str]:
        return [r.action for r in harness.fakes.orphan_records]

    await harness.until(lambda: actions()[-1:] == ["orphan_refunded"], "the refund recorded")
    # Still open for the finality period: the reorg that takes the refund reaches it.
    await handle.signal(OrphanPaymentWorkflow.chain_event_reverted, refund)
    await harness.until(lambda: len(harness.fakes.refunds_sent) == 2, "the refund re-sent")
    await handle.signal(OrphanPaymentWorkflow.booking_cancelled, cancellation_event(unknown))
    result = await handle.result()
    assert result.refunded
    assert actions() == [
        "orphan_payment_detected",
        "orphan_refund_sent",
        "orphan_refunded",
        "orphan_refund_reorged",
        "orphan_refund_sent",
        "orphan_refunded",
    ]
