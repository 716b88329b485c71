"""The outbox to a real HTTP receiver: written with the change, signed, retried, ordered, dead."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from sqlalchemy import func, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.webhooks import DeliveryConfig, WebhookDispatcher, WebhookMetrics
from db.webhook_endpoints import ReplaySelection, replay
from db.webhook_models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookOutbox
from tests.webhooks.flows import (
    _record,
    complete,
    drain,
    expected_signature,
    paid_booking,
    signatures,
)
from tests.webhooks.receiver import Receiver
from tests.workflows.fakes import make_booking
from workflows.audit import AuditAction
from workflows.types import BookingStatus as S

pytestmark = pytest.mark.integration


async def _all(sessions, query):
    async with sessions() as session:
        return list((await session.execute(query)).all())


async def test_a_paid_booking_is_delivered_once_signed_with_its_public_fields(
    store, sessions, receiver, dispatcher, add_endpoint
):
    _, secret = await add_endpoint(receiver.url)
    booking = await paid_booking(store)

    await drain(dispatcher, lambda: len(receiver.received) == 1, "booking.paid delivered")
    await dispatcher.dispatch_once()  # nothing due any more: no second POST
    assert len(receiver.received) == 1

    request = receiver.received[0]
    timestamp, (v1,) = signatures(request.headers["BookMe-Signature"])
    assert abs(timestamp - time.time()) < 60
    assert v1 == expected_signature(secret, timestamp, request.body)
    event = request.event
    assert request.headers["BookMe-Event-Id"] == event["id"]
    assert event["type"] == "booking.paid"
    assert event["booking_id"] == booking.booking_id
    fields = event["data"]["booking"]
    assert fields["status"] == "PAID"
    assert fields["amount_units"] == str(booking.amount_units)  # base units, as a string
    assert fields["customer_wallet"] == booking.customer_wallet
    assert event["data"]["previous_status"] == "PENDING_PAYMENT"
    (attempt,) = await _all(sessions, select(WebhookAttempt))
    assert attempt[0].succeeded
    assert attempt[0].status_code == 200
    assert attempt[0].duration_ms >= 0


async def test_a_transition_that_does_not_commit_writes_no_event(store, sessions, add_endpoint):
    await add_endpoint("http://127.0.0.1:9/never")
    ghost = make_booking()  # no row: the transition fails and rolls back as a whole
    record = _record(ghost, 1, S.CANCELLED, S.PENDING_PAYMENT, AuditAction.PAYMENT_TIMEOUT)
    with pytest.raises(ApplicationError):
        await ActivityEnvironment().run(store.apply_transition, record)
    assert await _all(sessions, select(WebhookOutbox.id)) == []


async def test_a_retried_transition_writes_its_event_once(store, sessions, add_endpoint):
    await add_endpoint("http://127.0.0.1:9/never")
    booking = await paid_booking(store)
    await complete(store, booking)
    await complete(store, booking)  # the activity retried after it committed
    types = await _all(sessions, select(WebhookOutbox.event_type).order_by(WebhookOutbox.id))
    assert [t for (t,) in types] == ["booking.paid", "booking.completed"]


async def test_a_500_is_retried_with_backoff_and_every_attempt_recorded(
    store, sessions, receiver, dispatcher, add_endpoint
):
    await add_endpoint(receiver.url)
    receiver.answers = [500, 502]
    await paid_booking(store)

    await drain(dispatcher, lambda: len(receiver.delivered()) == 1, "delivered after two 5xx")
    attempts = await _all(
        sessions,
        select(WebhookAttempt.status_code, WebhookAttempt.succeeded, WebhookAttempt.error).order_by(
            WebhookAttempt.id
        ),
    )
    assert attempts == [(500, False, "HTTP 500"), (502, False, "HTTP 502"), (200, True, None)]
    (delivery,) = await _all(sessions, select(WebhookDelivery))
    assert delivery[0].status is DeliveryStatus.DELIVERED
    assert delivery[0].attempts == 3
    # The same event each time: receivers dedupe on its id.
    assert len({r.event["id"] for r in receiver.received}) == 1


async def test_a_receiver_that_is_down_gets_the_event_once_it_is_up(
    store, sessions, dispatcher, add_endpoint
):
    down = Receiver()
    await down.start()
    port = down.port
    await down.stop()  # nothing listens on the endpoint's port now
    await add_endpoint(Receiver(port=port).url)
    await paid_booking(store)

    await dispatcher.dispatch_once()
    (failed,) = await _all(sessions, select(WebhookAttempt.status_code, WebhookAttempt.error))
    assert failed[0] is None
    assert "Connect" in failed[1]
    up = await Receiver(port=port).start()
    try:
        await drain(dispatcher, lambda: len(up.delivered()) == 1, "delivered once up")
    finally:
        await up.stop()


async def test_a_bookings_events_arrive_in_order_and_other_bookings_are_not_held_up(
    store, receiver, dispatcher, add_endpoint
):
    await add_endpoint(receiver.url)
    first = await paid_booking(store)
    await complete(store, first)  # queued behind first's booking.paid
    receiver.answers = [503, 503, 503]  # first's booking.paid fails three times
    other = await paid_booking(store)

    await drain(dispatcher, lambda: len(receiver.delivered()) == 3, "three events delivered")
    order = [(e["booking_id"], e["type"]) for e in receiver.delivered()]
    assert order.index((first.booking_id, "booking.paid")) < order.index(
        (first.booking_id, "booking.completed")
    )
    # The other booking's event went out while the first booking's head was failing.
    assert order[0] == (other.booking_id, "booking.paid")
    posted = [(r.event["booking_id"], r.event["type"]) for r in receiver.received]
    assert posted.index((first.booking_id, "booking.completed")) > max(
        i for i, p in enumerate(posted) if p == (first.booking_id, "booking.paid")
    )


async def test_an_endpoint_that_never_recovers_is_marked_dead_counted_and_replayable(
    store, sessions, box, registry, add_endpoint
):
    receiver = await Receiver(default=503).start()
    try:
        config = DeliveryConfig(
            timeout_seconds=2.0,
            retry_initial_seconds=0.05,
            retry_max_seconds=0.1,
            retry_horizon_seconds=0.5,
        )
        dispatcher = WebhookDispatcher(sessions, box, WebhookMetrics(registry), config)
        await add_endpoint(receiver.url)
        booking = await paid_booking(store)

        async def status() -> DeliveryStatus:
            (row,) = await _all(sessions, select(WebhookDelivery.status))
            return DeliveryStatus(row[0])

        dead = False
        for _ in range(200):
            await dispatcher.dispatch_once()
            if await status() is DeliveryStatus.DEAD:
                dead = True
                break
            await asyncio.sleep(0.02)
        assert dead
        assert registry.get_sample_value("bookme_webhook_dead_total") == 1.0
        attempts = await _all(sessions, select(func.count()).select_from(WebhookAttempt))
        assert attempts[0][0] >= 3  # retried until the horizon, each attempt recorded
        await dispatcher.dispatch_once()
        assert await status() is DeliveryStatus.DEAD  # dead rows are not sent again

        # Nothing lost: once the endpoint is back, an operator replays the booking.
        receiver.default = 200
        async with sessions.begin() as session:
            assert (
                await replay(session, ReplaySelection(booking_id=uuid.UUID(booking.booking_id)))
                == 1
            )
        await drain(dispatcher, lambda: len(receiver.delivered()) == 1, "replayed delivery")
        assert await status() is DeliveryStatus.DELIVERED
    finally:
        await receiver.stop()
