"""Happy paths with real durations: pay -> auto-complete at scheduled + 2 h -> COMPLETED."""

from __future__ import annotations

from datetime import timedelta

from tests.workflows.fakes import CUSTOMER, completion_event, payment_event
from workflows import BookingWorkflow
from workflows.types import AuthorizePaymentRequest, BookingStatus, ChainEventKind

S = BookingStatus


async def test_pay_then_auto_complete_then_completed(harness):
    booking = await harness.booking(scheduled_in=timedelta(hours=1))
    handle = await harness.start(booking)

    asked_at = await harness.env.get_current_time()
    auth = await handle.execute_update(
        BookingWorkflow.authorize_payment, AuthorizePaymentRequest(caller_wallet=CUSTOMER.lower())
    )
    assert auth.amount == booking.amount_units
    assert (auth.platform_fee_rate, auth.inviter_fee_rate) == (1000, 0)
    # release time = appointment + 2 h, expiry = now + 5 min
    assert auth.release_time == int((booking.scheduled_at + timedelta(hours=2)).timestamp())
    # the clock does not skip here, so "now" at signing is within a few seconds of asked_at
    assert asked_at < auth.expires_at <= asked_at + timedelta(minutes=5, seconds=5)

    paid = payment_event(booking)
    await handle.signal(BookingWorkflow.payment_confirmed, paid)
    view = await harness.wait_for(handle, S.PAID)
    assert view.applied_event_keys == [paid.key]

    # Nothing happens before the release time...
    await harness.env.sleep(timedelta(hours=2, minutes=50))
    assert (await handle.query(BookingWorkflow.status)).status is S.PAID
    assert harness.fakes.completions_sent == []
    # ...then the operator sends completeService (we stay inside the 30 s push grace).
    await harness.env.sleep(timedelta(minutes=10, seconds=20))
    view = await harness.wait_for(handle, S.PENDING_COMPLETION)
    assert len(harness.fakes.completions_sent) == 1
    assert view.completion_tx_hash == "0x" + "c0" * 32

    done = completion_event(booking, tx=view.completion_tx_hash)
    await handle.signal(BookingWorkflow.service_completed, done)
    result = await handle.result()
    assert result.status is S.COMPLETED
    assert harness.fakes.actions() == [
        "payment_confirmed",
        "auto_complete_sent",
        "service_completed",
    ]
    final = harness.fakes.transitions[-1]
    assert final.settlement is not None
    assert final.settlement.kind is ChainEventKind.COMPLETION
    assert (final.settlement.provider_amount, final.settlement.platform_amount) == (
        90_000_000,
        10_000_000,
    )
    assert [r.booking_id for r in harness.fakes.records] == [booking.booking_id]
    # The happy path stays small: no polls when the pushes arrive within the grace period.
    history = await handle.fetch_history()
    assert len(history.events) < 100
    assert harness.fakes.observations == []


async def test_customer_completes_before_release_time(harness):
    booking = await harness.booking(inviter="0x90F79bf6EB2c4f870365E785982E1f101E93b906")
    handle = await harness.start(booking)
    await handle.signal(BookingWorkflow.payment_confirmed, payment_event(booking))
    await harness.wait_for(handle, S.PAID)
    await handle.signal(BookingWorkflow.service_completed, completion_event(booking))
    result = await handle.result()
    assert result.status is S.COMPLETED
    settlement = harness.fakes.transitions[-1].settlement
    assert settlement is not None
    assert (
        settlement.provider_amount,
        settlement.platform_amount,
        settlement.inviter_amount,
    ) == (90_000_000, 5_000_000, 5_000_000)
    assert harness.fakes.actions() == ["payment_confirmed", "service_completed"]
    assert harness.fakes.completions_sent == []
