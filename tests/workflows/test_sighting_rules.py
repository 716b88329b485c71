"""`judge`: what one sighting does to the view, as a pure function of the booking's state."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from tests.workflows.fakes import completion_event, make_booking, payment_event
from workflows.booking.sightings import Verdict, judge
from workflows.booking.state import BookingState
from workflows.types import BookingStatus, PaymentSeen, PaymentSighting

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def shown_for(sighting: PaymentSighting) -> PaymentSeen:
    identity = sighting.event.identity
    return PaymentSeen(
        tx_hash=identity.tx_hash.upper().replace("0X", "0x"),  # hashes compare case-blind
        log_index=identity.log_index,
        block_number=identity.block_number,
        block_hash=identity.block_hash,
        confirmations=sighting.confirmations,
        required=2,
        seen_at=NOW,
    )


def test_new_and_deeper_sightings_show_repeats_and_shallower_ones_do_not():
    booking = make_booking(confirmations=2)
    state = BookingState.new(booking, NOW)
    first = PaymentSighting(event=payment_event(booking), confirmations=0)
    assert judge(booking, state, None, first).verdict is Verdict.SHOW
    shown = shown_for(dataclasses.replace(first, confirmations=1))
    assert judge(booking, state, shown, first).verdict is Verdict.NOTHING
    deeper = dataclasses.replace(first, confirmations=2)
    assert judge(booking, state, shown, deeper).verdict is Verdict.SHOW
    # The same transaction in another block is another inclusion: shown afresh.
    moved = dataclasses.replace(
        first,
        event=dataclasses.replace(
            first.event,
            identity=dataclasses.replace(first.event.identity, block_hash="0x" + "cd" * 32),
        ),
    )
    assert judge(booking, state, shown, moved).verdict is Verdict.SHOW


def test_a_removal_clears_only_the_inclusion_shown():
    booking = make_booking(confirmations=2)
    state = BookingState.new(booking, NOW)
    sighting = PaymentSighting(event=payment_event(booking), confirmations=0)
    shown = shown_for(sighting)
    removal = dataclasses.replace(sighting, removed=True)
    assert judge(booking, state, shown, removal).verdict is Verdict.CLEAR
    assert judge(booking, state, None, removal).verdict is Verdict.NOTHING
    other = PaymentSighting(event=payment_event(booking), confirmations=0, removed=True)
    assert judge(booking, state, shown, other).verdict is Verdict.NOTHING


def test_once_the_booking_moved_on_a_sighting_changes_nothing():
    booking = make_booking(confirmations=2)
    state = BookingState.new(booking, NOW)
    paid = payment_event(booking)
    state.applied[paid.key] = paid
    assert judge(booking, state, None, PaymentSighting(event=paid, confirmations=1)).verdict is (
        Verdict.NOTHING
    )
    state.applied.clear()
    state.status = BookingStatus.CANCELLED
    sighting = PaymentSighting(event=payment_event(booking), confirmations=0)
    assert judge(booking, state, None, sighting).verdict is Verdict.NOTHING


def test_what_contradicts_the_booking_is_ignored_with_a_reason():
    booking = make_booking(confirmations=2)
    state = BookingState.new(booking, NOW)
    cases = {
        "sighting ignored: payment event differs in provider": payment_event(
            booking, provider="0x" + "22" * 20
        ),
        "sighting ignored: a ServiceCompleted event": completion_event(booking),
    }
    for reason, event in cases.items():
        judgement = judge(booking, state, None, PaymentSighting(event=event, confirmations=0))
        assert (judgement.verdict, judgement.reason) == (Verdict.IGNORE, reason)
