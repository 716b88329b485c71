"""BookingStore against real Postgres: one transaction per transition, idempotent on retry."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from db.models import BlockchainEvent, Booking, BookingEvent
from db.settlement_models import PlatformFee, ProviderEarning, Refund
from db.statuses import BlockchainEventStatus
from tests.workflows.fakes import (
    INVITER,
    cancellation_event,
    completion_event,
    make_booking,
    payment_event,
)
from workflows.audit import AuditAction
from workflows.types import (
    BookingStatus,
    ChainEventKind,
    EventOutcome,
    RowTransaction,
    Settlement,
    TransitionRecord,
)

pytestmark = pytest.mark.integration
S = BookingStatus


def _record(booking, seq, from_status, to_status, action, **extra) -> TransitionRecord:
    return TransitionRecord(
        booking_id=booking.booking_id,
        dedupe_key=f"{booking.booking_id}:{seq}:{action}",
        from_status=from_status,
        to_status=to_status,
        action=action,
        occurred_at=datetime.now(UTC),
        **extra,
    )


async def _one(sessions, query):
    async with sessions() as session:
        return (await session.execute(query)).scalar_one()


async def test_record_booking_is_idempotent_and_refuses_a_conflicting_twin(store, sessions):
    env = ActivityEnvironment()
    booking = make_booking(inviter=INVITER)
    await env.run(store.record_booking, booking)
    await env.run(store.record_booking, booking)  # a retried activity
    row = await _one(sessions, select(Booking).where(Booking.id == uuid.UUID(booking.booking_id)))
    assert row.status.value == "PENDING_PAYMENT"
    assert row.amount_units == booking.amount_units
    assert (row.platform_fee_bps, row.inviter_fee_bps) == (500, 500)
    assert row.blockchain_booking_id == booking.chain_booking_id
    assert await _one(sessions, select(func.count()).select_from(BookingEvent)) == 1
    twin = dataclasses.replace(booking, amount_units=booking.amount_units + 1)
    with pytest.raises(ApplicationError) as info:
        await env.run(store.record_booking, twin)
    assert info.value.type == "BookingConflict"
    assert info.value.non_retryable


async def test_paid_then_completed_writes_status_audit_event_marks_and_earnings(store, sessions):
    env = ActivityEnvironment()
    booking = make_booking(inviter=INVITER)
    await env.run(store.record_booking, booking)
    paid = payment_event(booking)
    paid_record = _record(
        booking, 1, S.PENDING_PAYMENT, S.PAID, "payment_confirmed",
        event=paid, event_outcome=EventOutcome.PROCESSED,
    )  # fmt: skip
    await env.run(store.apply_transition, paid_record)
    await env.run(store.apply_transition, paid_record)  # retry: no second audit row
    done = completion_event(booking)
    assert done.completion is not None
    settlement = Settlement(
        kind=ChainEventKind.COMPLETION,
        provider_amount=done.completion.provider_amount,
        platform_amount=done.completion.platform_fee,
        inviter_amount=done.completion.inviter_fee,
    )
    done_record = _record(
        booking, 2, S.PAID, S.COMPLETED, "service_completed",
        event=done, event_outcome=EventOutcome.PROCESSED, settlement=settlement,
    )  # fmt: skip
    await env.run(store.apply_transition, done_record)
    await env.run(store.apply_transition, done_record)

    booking_id = uuid.UUID(booking.booking_id)
    row = await _one(sessions, select(Booking).where(Booking.id == booking_id))
    assert row.status.value == "COMPLETED"
    assert row.blockchain_tx_hash == paid.identity.tx_hash
    assert row.completion_tx_hash == done.identity.tx_hash
    async with sessions() as session:
        kinds = (
            (
                await session.execute(
                    select(BookingEvent.kind)
                    .where(BookingEvent.booking_id == booking_id)
                    .order_by(BookingEvent.id)
                )
            )
            .scalars()
            .all()
        )
        marks = (
            (await session.execute(select(BlockchainEvent.status).order_by(BlockchainEvent.id)))
            .scalars()
            .all()
        )
        earning = (await session.execute(select(ProviderEarning))).scalar_one()
        fee = (await session.execute(select(PlatformFee))).scalar_one()
    assert kinds == ["created", "payment_confirmed", "service_completed"]
    assert marks == [BlockchainEventStatus.PROCESSED, BlockchainEventStatus.PROCESSED]
    assert earning.amount_units == 90_000_000
    assert (fee.platform_amount_units, fee.inviter_amount_units) == (5_000_000, 5_000_000)
    assert fee.inviter_wallet == INVITER


async def test_listener_row_is_marked_not_duplicated(store, sessions):
    env = ActivityEnvironment()
    booking = make_booking()
    await env.run(store.record_booking, booking)
    paid = payment_event(booking)
    async with sessions.begin() as session:
        session.add(
            BlockchainEvent(
                chain_id=paid.identity.chain_id,
                tx_hash=paid.identity.tx_hash,
                log_index=paid.identity.log_index,
                block_number=paid.identity.block_number,
                block_hash=paid.identity.block_hash,
                contract_address="0x5FbDB2315678afecb367f032d93F642f64180aa3",
                event_type="BookingCreatedAndPaid",
                chain_booking_id=paid.chain_booking_id,
            )
        )
    await env.run(
        store.apply_transition,
        _record(
            booking, 1, S.PENDING_PAYMENT, S.PAID, "payment_confirmed",
            event=paid, event_outcome=EventOutcome.PROCESSED,
        ),
    )  # fmt: skip
    row = await _one(sessions, select(BlockchainEvent))
    assert row.status is BlockchainEventStatus.PROCESSED
    assert row.booking_id == uuid.UUID(booking.booking_id)
    assert row.processed_at is not None


async def test_reorg_rolls_back_payment_columns_and_marks_the_event(store, sessions):
    env = ActivityEnvironment()
    booking = make_booking()
    await env.run(store.record_booking, booking)
    paid = payment_event(booking)
    await env.run(
        store.apply_transition,
        _record(
            booking, 1, S.PENDING_PAYMENT, S.PAID, "payment_confirmed",
            event=paid, event_outcome=EventOutcome.PROCESSED,
        ),
    )  # fmt: skip
    await env.run(
        store.apply_transition,
        _record(
            booking, 2, S.PAID, S.PENDING_PAYMENT, "payment_reorged",
            reason="payment removed by a reorg", event=paid, event_outcome=EventOutcome.REORGED,
        ),
    )  # fmt: skip
    row = await _one(sessions, select(Booking))
    assert row.status.value == "PENDING_PAYMENT"
    assert row.blockchain_tx_hash is None
    mark = await _one(sessions, select(BlockchainEvent))
    assert mark.status is BlockchainEventStatus.REORGED


async def test_cancellation_records_refund_legs(store, sessions):
    env = ActivityEnvironment()
    booking = make_booking()
    await env.run(store.record_booking, booking)
    refund = cancellation_event(booking, customer=60_000_000, provider=40_000_000)
    await env.run(
        store.apply_transition,
        _record(
            booking, 1, S.PENDING_CANCELLATION, S.CANCELLED, "booking_cancelled",
            event=refund, event_outcome=EventOutcome.PROCESSED,
            settlement=Settlement(
                kind=ChainEventKind.CANCELLATION, customer_amount=60_000_000,
                provider_amount=40_000_000,
            ),
        ),
    )  # fmt: skip
    leg = await _one(sessions, select(Refund))
    assert (leg.customer_amount_units, leg.provider_amount_units) == (60_000_000, 40_000_000)
    assert leg.emergency is False
    row = await _one(sessions, select(Booking))
    assert row.cancellation_tx_hash == refund.identity.tx_hash


async def test_settlement_reorged_then_reapplied_is_live_once(store, sessions):
    env = ActivityEnvironment()
    booking = make_booking()
    await env.run(store.record_booking, booking)
    refund = cancellation_event(booking, customer=60_000_000, provider=40_000_000)
    settlement = Settlement(
        kind=ChainEventKind.CANCELLATION, customer_amount=60_000_000, provider_amount=40_000_000
    )
    steps = [
        (S.PAID, S.CANCELLED, "booking_cancelled", EventOutcome.PROCESSED, settlement),
        (S.CANCELLED, S.PAID, "settlement_reorged", EventOutcome.REORGED, None),
        (S.PAID, S.CANCELLED, "booking_cancelled", EventOutcome.PROCESSED, settlement),
    ]
    for seq, (before, after, action, outcome, legs) in enumerate(steps, start=1):
        record = _record(
            booking, seq, before, after, action,
            event=refund, event_outcome=outcome, settlement=legs,
        )  # fmt: skip
        await env.run(store.apply_transition, record)
        if seq == 2:
            leg = await _one(sessions, select(Refund))
            assert leg.reverted_at is not None  # out of the totals while the chain lacks it
    # the same transaction re-included: one leg row, live again, counted once
    async with sessions() as session:
        legs_rows = (await session.execute(select(Refund))).scalars().all()
        mark = (await session.execute(select(BlockchainEvent))).scalar_one()
    assert len(legs_rows) == 1
    assert legs_rows[0].reverted_at is None
    assert legs_rows[0].customer_amount_units == 60_000_000
    assert mark.status is BlockchainEventStatus.PROCESSED
    row = await _one(sessions, select(Booking))
    assert row.status.value == "CANCELLED"


@pytest.mark.parametrize("bad", ["svc\x00nul", "svc\ud800surrogate"])
async def test_unstorable_text_fails_once_not_forever(store, sessions, bad):
    """Poison input: data Postgres refuses is a non-retryable error, not an endless retry."""
    env = ActivityEnvironment()
    booking = dataclasses.replace(make_booking(), service_id=bad)
    with pytest.raises(ApplicationError) as raised:
        await env.run(store.record_booking, booking)
    assert raised.value.non_retryable
    assert raised.value.type == "InvalidActivityInput"
    assert "cannot store this booking" in raised.value.message
    # An honest booking right after it is stored as usual.
    honest = make_booking()
    await env.run(store.record_booking, honest)
    row = await _one(sessions, select(Booking).where(Booking.id == uuid.UUID(honest.booking_id)))
    assert row.status.value == "PENDING_PAYMENT"


async def test_unstorable_reason_in_a_transition_fails_once(store, sessions):
    env = ActivityEnvironment()
    booking = make_booking()
    await env.run(store.record_booking, booking)
    bad = _record(booking, 1, S.PENDING_PAYMENT, S.CANCELLED, "cancelled_unpaid", reason="a\x00b")
    with pytest.raises(ApplicationError) as raised:
        await env.run(store.apply_transition, bad)
    assert raised.value.non_retryable


async def test_the_row_keeps_the_transaction_the_record_names_not_one_read_from_the_action(
    store, sessions
):
    env = ActivityEnvironment()
    booking = make_booking()
    await env.run(store.record_booking, booking)
    sent = "0x" + "c0" * 32
    await env.run(
        store.apply_transition,
        _record(
            booking,
            1,
            S.PENDING_PAYMENT,
            S.PENDING_COMPLETION,
            AuditAction.AUTO_COMPLETE_SENT,
            tx_hash=sent,
            sent=RowTransaction.completion(sent),
        ),
    )
    # The same action with no ``sent`` changes no transaction column.
    await env.run(
        store.apply_transition,
        _record(
            booking,
            2,
            S.PENDING_COMPLETION,
            S.PENDING_CANCELLATION,
            AuditAction.EMERGENCY_CANCEL_SENT,
            tx_hash="0x" + "e0" * 32,
        ),
    )
    row = await _one(sessions, select(Booking).where(Booking.id == uuid.UUID(booking.booking_id)))
    assert row.completion_tx_hash == sent
    assert row.cancellation_tx_hash is None
