"""Pure checks of a chain event against the booking it claims to be about.

Two kinds of "wrong": a *foreign* event (another chain or booking id) is not this booking's
business and is recorded and ignored; a *mismatch* (right booking, wrong parties, amount,
fee rates or split) means money moved differently than this booking allowed, and escalates.
"""

from __future__ import annotations

from chain.basis_points import bps_of
from workflows.types import (
    BookingInput,
    CancellationSplit,
    ChainEventKind,
    ChainEventSignal,
)


def same_wallet(a: str | None, b: str | None) -> bool:
    return (a or "").lower() == (b or "").lower()


def expected_fees(booking: BookingInput) -> tuple[int, int, int]:
    """(platform_fee, inviter_fee, provider_amount) the contract computes at payment."""
    platform_rate, inviter_rate = booking.policy.fee_rates(
        has_inviter=booking.inviter_wallet is not None
    )
    platform_fee = bps_of(booking.amount_units, platform_rate)
    inviter_fee = bps_of(booking.amount_units, inviter_rate)
    return platform_fee, inviter_fee, booking.amount_units - platform_fee - inviter_fee


def foreign_reason(booking: BookingInput, event: ChainEventSignal) -> str | None:
    """Why the event is not about this booking at all, or None."""
    if event.identity.chain_id != booking.policy.chain_id:
        return f"event from chain {event.identity.chain_id}, booking lives on {booking.policy.chain_id}"
    if event.chain_booking_id.lower() != booking.chain_booking_id.lower():
        return f"event for chain booking {event.chain_booking_id}, not {booking.chain_booking_id}"
    return None


def mismatch_reason(
    booking: BookingInput,
    event: ChainEventSignal,
    authorized_splits: list[CancellationSplit] | tuple[CancellationSplit, ...] = (),
) -> str | None:
    """Why this booking's event contradicts what the booking allowed, or None."""
    if event.kind is ChainEventKind.PAYMENT and event.payment is not None:
        p = event.payment
        platform_rate, inviter_rate = booking.policy.fee_rates(
            has_inviter=booking.inviter_wallet is not None
        )
        checks = (
            ("customer", same_wallet(p.customer, booking.customer_wallet)),
            ("provider", same_wallet(p.provider, booking.provider_wallet)),
            ("inviter", same_wallet(p.inviter, booking.inviter_or_zero)),
            ("amount", p.amount == booking.amount_units),
            ("platform fee rate", p.platform_fee_rate == platform_rate),
            ("inviter fee rate", p.inviter_fee_rate == inviter_rate),
        )
        wrong = [name for name, ok in checks if not ok]
        return f"payment event differs in {', '.join(wrong)}" if wrong else None
    if event.kind is ChainEventKind.COMPLETION and event.completion is not None:
        c = event.completion
        platform_fee, inviter_fee, provider_amount = expected_fees(booking)
        if not same_wallet(c.provider, booking.provider_wallet):
            return "completion paid a different provider"
        if (c.provider_amount, c.platform_fee, c.inviter_fee) != (
            provider_amount,
            platform_fee,
            inviter_fee,
        ):
            return (
                f"completion split {c.provider_amount}/{c.platform_fee}/{c.inviter_fee} "
                f"differs from the expected {provider_amount}/{platform_fee}/{inviter_fee}"
            )
        return None
    if event.kind is ChainEventKind.CANCELLATION and event.cancellation is not None:
        x = event.cancellation
        split = CancellationSplit(
            customer_amount=x.customer_amount,
            provider_amount=x.provider_amount,
            platform_amount=x.platform_amount,
            inviter_amount=x.inviter_amount,
        )
        if split.total != booking.amount_units:
            return (
                f"cancellation legs sum to {split.total}, booking amount is {booking.amount_units}"
            )
        full_refund = split.customer_amount == booking.amount_units
        if not full_refund and split not in authorized_splits:
            return "cancellation split was never authorized for this booking"
        return None
    return f"{event.kind} event without its fields"


def settlement_legs(event: ChainEventSignal) -> tuple[int, int, int, int]:
    """(customer, provider, platform, inviter) amounts an event moved, from the event itself."""
    if event.completion is not None:
        c = event.completion
        return 0, c.provider_amount, c.platform_fee, c.inviter_fee
    if event.cancellation is not None:
        x = event.cancellation
        return x.customer_amount, x.provider_amount, x.platform_amount, x.inviter_amount
    return 0, 0, 0, 0
