"""An orphan payment is refunded once, whatever the number of deliveries."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import WorkflowIDConflictPolicy

from tests.workflows.fakes import cancellation_event, make_booking, payment_event
from workflows import OrphanPaymentWorkflow, orphan_workflow_id
from workflows.types import OrphanPaymentInput


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
    orphan = OrphanPaymentInput(event=payment_event(unknown))
    first = await _start(harness, orphan)
    second = await _start(harness, orphan)  # the listener delivered it twice
    assert second.result_run_id == first.result_run_id
    await first.signal(OrphanPaymentWorkflow.booking_cancelled, cancellation_event(unknown))
    result = await first.result()
    assert result.refunded
    assert len(harness.fakes.refunds_sent) == 1
    assert harness.fakes.refunds_sent[0].reason == "orphan_payment"
    assert [r.action for r in harness.fakes.orphan_records] == [
        "orphan_payment_detected",
        "orphan_refund_sent",
        "orphan_refunded",
    ]


async def test_orphan_refund_found_by_polling(harness):
    unknown = make_booking(now=await harness.env.get_current_time())
    handle = await _start(harness, OrphanPaymentInput(event=payment_event(unknown)))
    harness.fakes.chain_events = [cancellation_event(unknown)]
    await harness.env.sleep(timedelta(seconds=31))
    result = await handle.result()
    assert result.refunded
    assert harness.fakes.observations[0].tx_hash == result.refund_tx_hash
