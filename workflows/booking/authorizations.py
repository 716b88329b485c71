"""Signing the booking's payment and cancellation authorizations (activities, from workflow code).

The terms come from the booking the marketplace created and from the frozen policy; the only
things a request decides are whether to ask (the guards) and, for a cancellation, whose
split applies.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from chain.reason_codes import cancellation_reason
from workflows import constants as c
from workflows.booking import short_activities
from workflows.booking.state import BookingState
from workflows.cancellation_policy import CancellationPolicy
from workflows.types import (
    BookingInput,
    CancellationAuthorization,
    PartyRole,
    PaymentAuthorization,
    SignCancellationRequest,
    SignPaymentRequest,
)


async def sign_payment(
    booking: BookingInput, state: BookingState, now: datetime
) -> PaymentAuthorization:
    policy = booking.policy
    expiry = min(now + timedelta(seconds=policy.authorization_ttl_seconds), state.payment_deadline)
    platform_rate, inviter_rate = policy.fee_rates(has_inviter=booking.inviter_wallet is not None)
    state.payment.issued += 1
    auth: PaymentAuthorization = await short_activities.execute(
        c.SIGN_PAYMENT_AUTHORIZATION,
        SignPaymentRequest(
            booking_id=booking.booking_id,
            idempotency_key=f"{booking.booking_id}:payment:{state.payment.issued}",
            chain_booking_id=booking.chain_booking_id,
            customer=booking.customer_wallet,
            provider=booking.provider_wallet,
            inviter=booking.inviter_or_zero,
            amount=booking.amount_units,
            platform_fee_rate=platform_rate,
            inviter_fee_rate=inviter_rate,
            release_time=int(state.release_at.timestamp()),
            expiry=int(expiry.timestamp()),
        ),
        patch=c.PATCH_COMPACT_HISTORY,
        result_type=PaymentAuthorization,
        start_to_close=c.SIGN_ACTIVITY_TIMEOUT,
        retry=c.SIGN_RETRY,
    )
    return auth


async def sign_cancellation(
    booking: BookingInput,
    state: BookingState,
    policy: CancellationPolicy,
    role: PartyRole,
    now: datetime,
) -> CancellationAuthorization:
    split = policy.split(
        role=role, amount=booking.amount_units, scheduled_at=booking.scheduled_at, now=now
    )
    state.cancellation.splits.append(split)
    issued_by = state.cancellation.issued_by
    issued_by[role.value] = issued_by.get(role.value, 0) + 1
    ttl = timedelta(seconds=booking.policy.authorization_ttl_seconds)
    auth: CancellationAuthorization = await short_activities.execute(
        c.SIGN_CANCELLATION_AUTHORIZATION,
        SignCancellationRequest(
            booking_id=booking.booking_id,
            idempotency_key=f"{booking.booking_id}:cancel:{len(state.cancellation.splits)}",
            chain_booking_id=booking.chain_booking_id,
            split=split,
            # The chain is public and permanent: a code there, the words in Postgres.
            reason=cancellation_reason(role.value).value,
            expiry=int((now + ttl).timestamp()),
            requested_by=role,
        ),
        patch=c.PATCH_COMPACT_HISTORY,
        result_type=CancellationAuthorization,
        start_to_close=c.SIGN_ACTIVITY_TIMEOUT,
        retry=c.SIGN_RETRY,
    )
    return auth
