"""An authorization is dead when the chain's clock says so, not the workflow's.

The contract accepts a payment while ``block.timestamp <= expiry``; block time lags wall time
(a deep reorg re-mines blocks with their old timestamps: a one-hour soak left anvil ~10 s
behind and 17 payments landed on bookings their workflows had already cancelled). The workflow
may only give up on a payment once the newest confirmed block has passed the authorization's
expiry. Time-skipping server, fake activities whose chain clock the test sets.
"""

from __future__ import annotations

from datetime import timedelta

from tests.workflows.fakes import CUSTOMER, payment_event
from workflows import BookingWorkflow
from workflows.types import (
    AuthorizePaymentRequest,
    BookingStatus,
    CancellationRequest,
    OnChainStatus,
    PartyRole,
)

S = BookingStatus
LAG = 30  # seconds the chain's clock is behind the workflow's


def _looks(harness):
    """The final checks: the reads that asked for the chain's clock."""
    return [o for o in harness.fakes.observations if o.chain_time]


async def _authorized(harness, **policy):
    booking = await harness.booking(**policy)
    handle = await harness.start(booking)
    auth = await handle.execute_update(
        BookingWorkflow.authorize_payment, AuthorizePaymentRequest(caller_wallet=CUSTOMER)
    )
    return booking, handle, auth


async def test_the_deadline_waits_until_the_chain_has_passed_the_authorizations_expiry(harness):
    # The authorization lives as long as the payment deadline: at the deadline it is spent
    # by our clock, still good on a chain whose clock is behind.
    booking, handle, auth = await _authorized(
        harness, payment_deadline_seconds=600, authorization_ttl_seconds=900
    )
    expiry = int(auth.expires_at.timestamp())
    harness.fakes.chain_clock = expiry - LAG
    await harness.env.sleep(timedelta(minutes=11))  # past the deadline, several looks
    assert (await handle.query(BookingWorkflow.status)).status is S.PENDING_PAYMENT
    assert len(_looks(harness)) >= 2  # it looked, found the chain behind, and looked again
    # The customer's payment, mined while the chain still accepted the authorization, is taken.
    paid = payment_event(booking)
    await handle.signal(BookingWorkflow.payment_confirmed, paid)
    view = await harness.wait_for(handle, S.PAID)
    assert view.applied_event_keys == [paid.key]
    assert harness.fakes.actions() == ["payment_confirmed"]
    assert harness.fakes.refunds_sent == []


async def test_the_deadline_cancels_once_the_chain_has_passed_the_expiry(harness):
    _booking, handle, auth = await _authorized(
        harness, payment_deadline_seconds=600, authorization_ttl_seconds=900
    )
    expiry = int(auth.expires_at.timestamp())
    harness.fakes.chain_clock = expiry - LAG

    def catch_up(request):
        if request.chain_time and len(_looks(harness)) == 3:
            harness.fakes.chain_clock = expiry + 1

    harness.fakes.on_observe = catch_up
    final = await handle.result()
    assert final.status is S.CANCELLED
    assert final.reason == "payment_timeout"
    assert len(_looks(harness)) == 3  # two while the chain lagged, then the conclusive one
    assert harness.fakes.actions() == ["payment_timeout"]


async def test_a_payment_after_an_immediate_cancellation_is_found_while_the_chain_lags(harness):
    # The authorization expired by our clock, so the customer's cancellation is immediate; the
    # chain, behind, still takes the payment: the workflow looks before closing and refunds it.
    booking, handle, auth = await _authorized(
        harness, payment_deadline_seconds=1800, authorization_ttl_seconds=60
    )
    await harness.env.sleep(timedelta(seconds=90))
    expiry = int(auth.expires_at.timestamp())
    harness.fakes.chain_clock = expiry - LAG
    result = await handle.execute_update(
        BookingWorkflow.request_cancellation,
        CancellationRequest(reason="changed my mind", role=PartyRole.CUSTOMER, wallet=CUSTOMER),
    )
    assert result.status is S.CANCELLED
    harness.fakes.onchain_status = OnChainStatus.PAID
    harness.fakes.chain_events = [payment_event(booking)]
    await harness.env.sleep(timedelta(minutes=2))
    view = await harness.wait_for(handle, S.FAILED)
    assert view.reason == "payment arrived after the booking was closed"
    assert len(harness.fakes.refunds_sent) == 1
    assert harness.fakes.actions() == ["cancelled_unpaid", "contradiction"]
