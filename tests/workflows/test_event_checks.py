"""Pure checks of chain events against the booking, and the UI summary."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from tests.workflows.fakes import (
    INVITER,
    cancellation_event,
    completion_event,
    make_booking,
    payment_event,
)
from workflows.event_checks import expected_fees, foreign_reason, mismatch_reason
from workflows.summary import booking_summary, format_usdc
from workflows.types import BookingStatus, CancellationSplit


def test_matching_payment_passes_and_each_field_is_checked():
    booking = make_booking(inviter=INVITER)
    assert mismatch_reason(booking, payment_event(booking)) is None
    for change, word in (
        ({"amount": booking.amount_units + 1}, "amount"),
        ({"customer": INVITER}, "customer"),
        ({"provider": INVITER}, "provider"),
        ({"inviter": "0x0000000000000000000000000000000000000000"}, "inviter"),
        ({"platform_fee_rate": 1000}, "platform fee rate"),
        ({"inviter_fee_rate": 0}, "inviter fee rate"),
    ):
        reason = mismatch_reason(booking, payment_event(booking, **change))
        assert reason is not None
        assert word in reason


def test_wallets_compare_case_insensitively():
    booking = make_booking()
    event = payment_event(booking, customer=booking.customer_wallet.lower())
    assert mismatch_reason(booking, event) is None


def test_foreign_events_are_told_apart_from_mismatches():
    booking = make_booking()
    other = make_booking()
    assert foreign_reason(booking, payment_event(other)) is not None
    wrong_chain = payment_event(booking)
    wrong_chain = dataclasses.replace(
        wrong_chain, identity=dataclasses.replace(wrong_chain.identity, chain_id=8453)
    )
    assert "chain 8453" in (foreign_reason(booking, wrong_chain) or "")


def test_completion_split_must_match_the_fee_policy():
    booking = make_booking(amount=100_000_001, inviter=INVITER)
    assert expected_fees(booking) == (5_000_000, 5_000_000, 90_000_001)
    good = completion_event(booking)
    assert mismatch_reason(booking, good) is None
    assert good.completion is not None
    skewed = dataclasses.replace(
        good, completion=dataclasses.replace(good.completion, provider_amount=1)
    )
    assert "differs" in (mismatch_reason(booking, skewed) or "")


def test_cancellation_needs_full_refund_or_an_authorized_split():
    booking = make_booking()
    assert mismatch_reason(booking, cancellation_event(booking)) is None
    split = cancellation_event(booking, customer=70_000_000, provider=30_000_000)
    assert mismatch_reason(booking, split) == (
        "cancellation split was never authorized for this booking"
    )
    authorized = CancellationSplit(
        customer_amount=70_000_000, provider_amount=30_000_000, platform_amount=0, inviter_amount=0
    )
    assert mismatch_reason(booking, split, [authorized]) is None
    short = cancellation_event(booking, customer=1)
    assert "sum to" in (mismatch_reason(booking, short) or "")


def test_summary_reads_like_the_ui_wants():
    assert format_usdc(100_000_000) == "100.00 USDC"
    assert format_usdc(1_234_567) == "1.234567 USDC"
    booking = make_booking(now=datetime(2026, 11, 28, 14, 0, tzinfo=UTC))
    summary = booking_summary(booking, BookingStatus.PAID)
    assert summary.startswith("100.00 USDC · provider 0x3C44…93BC · 2026-12-01 14:00 UTC")
    assert summary.endswith("· PAID")
