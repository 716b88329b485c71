"""cancelBooking and emergencyCancelBooking: signed splits, full refunds, and their limits."""

from __future__ import annotations

import pytest
from eth_account import Account

from chain.eip712 import CancellationAuthorization
from tests.contracts.harness import (
    CUSTOMER_FUNDS,
    DEFAULT_AMOUNT,
    STATUS_CANCELLED,
    EscrowHarness,
)

pytestmark = pytest.mark.integration


def _split_of_a_booking_with_inviter(
    escrow: EscrowHarness, amounts: tuple[int, int, int, int]
) -> CancellationAuthorization:
    """A signed cancellation (customer, provider, platform, inviter) of a new paid booking."""
    customer, provider, platform, inviter = amounts
    return escrow.cancel_auth(
        escrow.paid_booking(with_inviter=True),
        customer_amount=customer,
        provider_amount=provider,
        platform_amount=platform,
        inviter_amount=inviter,
    )


@pytest.mark.parametrize("who", ["customer", "provider", "operator"])
def test_cancellation_pays_the_signed_split_to_stored_recipients(escrow: EscrowHarness, who: str):
    booking_id = escrow.paid_booking(with_inviter=True)
    auth = escrow.cancel_auth(
        booking_id,
        customer_amount=40 * 10**6,
        provider_amount=50 * 10**6,
        platform_amount=5 * 10**6,
        inviter_amount=5 * 10**6,
        reason="late_cancellation",
    )
    sender = getattr(escrow.roles, who)

    receipt = escrow.cancel(auth, sender)

    assert escrow.balances() == {
        "customer": CUSTOMER_FUNDS - DEFAULT_AMOUNT + 40 * 10**6,
        "provider": 50 * 10**6,
        "inviter": 5 * 10**6,
        "treasury": 5 * 10**6,
        "operator": 0,
        "stranger": 0,
        "escrow": 0,
    }
    assert escrow.booking(booking_id)[0] == STATUS_CANCELLED
    assert escrow.events(receipt, "BookingCancelled") == [
        {
            "bookingId": bytes.fromhex(booking_id[2:]),
            "cancelledBy": sender.address,
            "customerAmount": 40 * 10**6,
            "providerAmount": 50 * 10**6,
            "platformAmount": 5 * 10**6,
            "inviterAmount": 5 * 10**6,
            "reason": "late_cancellation",
        }
    ]


def test_full_refund_cancellation(escrow: EscrowHarness):
    booking_id = escrow.paid_booking()
    escrow.cancel(escrow.cancel_auth(booking_id), escrow.roles.customer)
    assert escrow.balances()["customer"] == CUSTOMER_FUNDS
    assert escrow.balances()["escrow"] == 0


def test_stranger_cannot_cancel(escrow: EscrowHarness):
    booking_id = escrow.paid_booking()
    auth = escrow.cancel_auth(booking_id)
    escrow.expect_revert(
        "NotAuthorized", escrow.fail_as(escrow.roles.stranger, escrow.cancel_call(auth))
    )


@pytest.mark.parametrize(
    "amounts",
    [
        (DEFAULT_AMOUNT - 1, 0, 0, 0),
        (DEFAULT_AMOUNT, 1, 0, 0),
        (50 * 10**6, 50 * 10**6, 1, 0),
        (0, 0, 0, 0),
        # Terms that would wrap around 2**256 to the right total.
        (2**256 - 1, DEFAULT_AMOUNT + 1, 0, 0),
    ],
)
def test_amounts_not_summing_to_the_escrow_are_rejected(escrow: EscrowHarness, amounts):
    auth = _split_of_a_booking_with_inviter(escrow, amounts)
    escrow.expect_revert(
        "AmountsDoNotSum", escrow.fail_as(escrow.roles.customer, escrow.cancel_call(auth))
    )


def test_inviter_amount_without_inviter_is_rejected(escrow: EscrowHarness):
    booking_id = escrow.paid_booking()
    auth = escrow.cancel_auth(booking_id, customer_amount=DEFAULT_AMOUNT - 1, inviter_amount=1)
    escrow.expect_revert(
        "InvalidAmount", escrow.fail_as(escrow.roles.customer, escrow.cancel_call(auth))
    )


def test_cancellation_signed_by_another_key_is_rejected(escrow: EscrowHarness):
    booking_id = escrow.paid_booking()
    auth = escrow.cancel_auth(booking_id)
    forged = escrow.sign(auth, key=escrow.roles.customer.private_key)
    escrow.expect_revert(
        "InvalidSignature", escrow.fail_as(escrow.roles.customer, escrow.cancel_call(auth, forged))
    )


def test_expired_cancellation_is_rejected(escrow: EscrowHarness):
    booking_id = escrow.paid_booking()
    auth = escrow.cancel_auth(booking_id, expiry=escrow.now() - 1)
    escrow.expect_revert(
        "AuthorizationExpired", escrow.fail_as(escrow.roles.customer, escrow.cancel_call(auth))
    )


def test_cancellation_nonce_is_single_use_across_bookings(escrow: EscrowHarness):
    first = escrow.paid_booking()
    second = escrow.paid_booking()
    used = escrow.cancel_auth(first)
    escrow.cancel(used, escrow.roles.customer)
    reuse = escrow.cancel_auth(second, nonce=used.nonce)
    escrow.expect_revert(
        "NonceAlreadyUsed", escrow.fail_as(escrow.roles.customer, escrow.cancel_call(reuse))
    )


def test_payment_nonce_cannot_be_reused_for_a_cancellation(escrow: EscrowHarness):
    auth = escrow.booking_auth()
    escrow.pay(auth)
    cancel = escrow.cancel_auth(auth.booking_id, nonce=auth.nonce)
    escrow.expect_revert(
        "NonceAlreadyUsed", escrow.fail_as(escrow.roles.customer, escrow.cancel_call(cancel))
    )


def test_completed_booking_cannot_be_cancelled(escrow: EscrowHarness):
    booking_id = escrow.paid_booking()
    auth = escrow.cancel_auth(booking_id)
    escrow.complete(booking_id, escrow.roles.customer)
    escrow.expect_revert(
        "BookingNotPaid", escrow.fail_as(escrow.roles.customer, escrow.cancel_call(auth))
    )
    escrow.expect_revert(
        "BookingNotPaid", escrow.fail_as(escrow.roles.operator, escrow.emergency_call(booking_id))
    )


def test_cancelled_booking_cannot_be_cancelled_or_completed_again(escrow: EscrowHarness):
    booking_id = escrow.paid_booking()
    escrow.cancel(escrow.cancel_auth(booking_id), escrow.roles.provider)
    escrow.expect_revert(
        "BookingNotPaid",
        escrow.fail_as(escrow.roles.customer, escrow.cancel_call(escrow.cancel_auth(booking_id))),
    )
    escrow.expect_revert(
        "BookingNotPaid", escrow.fail_as(escrow.roles.customer, escrow.complete_call(booking_id))
    )


def test_emergency_cancel_refunds_the_customer_in_full(escrow: EscrowHarness):
    booking_id = escrow.paid_booking(with_inviter=True)

    receipt = escrow.emergency(booking_id, "orphan_payment")

    assert escrow.balances() == {
        "customer": CUSTOMER_FUNDS,
        "provider": 0,
        "inviter": 0,
        "treasury": 0,
        "operator": 0,
        "stranger": 0,
        "escrow": 0,
    }
    assert escrow.booking(booking_id)[0] == STATUS_CANCELLED
    assert escrow.events(receipt, "BookingCancelled") == [
        {
            "bookingId": bytes.fromhex(booking_id[2:]),
            "cancelledBy": escrow.roles.operator.address,
            "customerAmount": DEFAULT_AMOUNT,
            "providerAmount": 0,
            "platformAmount": 0,
            "inviterAmount": 0,
            "reason": "orphan_payment",
        }
    ]


@pytest.mark.parametrize("who", ["owner", "signer", "customer", "stranger"])
def test_only_the_operator_may_emergency_cancel(escrow: EscrowHarness, who: str):
    booking_id = escrow.paid_booking()
    escrow.expect_revert(
        "NotAuthorized",
        escrow.fail_as(getattr(escrow.roles, who), escrow.emergency_call(booking_id)),
    )


def test_emergency_cancel_of_unknown_booking_is_rejected(escrow: EscrowHarness):
    escrow.expect_revert(
        "BookingNotPaid",
        escrow.fail_as(escrow.roles.operator, escrow.emergency_call(escrow.new_booking_id())),
    )


# A booking with an inviter escrows 100 USDC as provider 90, platform 5, inviter 5.
@pytest.mark.parametrize(
    ("leg", "amounts"),
    [
        ("provider", (0, 90 * 10**6 + 1, 5 * 10**6 - 1, 5 * 10**6)),
        ("platform", (0, 85 * 10**6, 10 * 10**6, 5 * 10**6)),
        ("inviter", (0, 85 * 10**6, 5 * 10**6, 10 * 10**6)),
        ("platform, all of it", (0, 0, DEFAULT_AMOUNT, 0)),
    ],
)
def test_a_cancellation_never_pays_a_party_more_than_completion_would(
    escrow: EscrowHarness, leg: str, amounts: tuple[int, int, int, int]
):
    auth = _split_of_a_booking_with_inviter(escrow, amounts)
    # The signer signed it, and it sums to the escrow: only the per-leg cap refuses it.
    escrow.expect_revert(
        "LegAboveCap", escrow.fail_as(escrow.roles.provider, escrow.cancel_call(auth))
    )


def test_a_cancellation_may_pay_each_party_exactly_its_completion_leg(escrow: EscrowHarness):
    booking_id = escrow.paid_booking(with_inviter=True)
    auth = escrow.cancel_auth(
        booking_id,
        customer_amount=0,
        provider_amount=90 * 10**6,
        platform_amount=5 * 10**6,
        inviter_amount=5 * 10**6,
    )
    escrow.cancel(auth, escrow.roles.provider)
    assert escrow.balances()["provider"] == 90 * 10**6


def test_cancellation_expiring_beyond_the_max_ttl_is_rejected(escrow: EscrowHarness):
    booking_id = escrow.paid_booking()
    ttl = escrow.escrow.functions.MAX_AUTH_TTL().call()
    assert ttl == 3600
    too_long = escrow.cancel_auth(booking_id, expiry=escrow.now() + 30 * 86400)
    escrow.expect_revert(
        "AuthorizationTooLong",
        escrow.fail_as(escrow.roles.customer, escrow.cancel_call(too_long)),
    )
    # At the bound (from the next block's time, where the call runs) it is accepted.
    escrow.cancel(escrow.cancel_auth(booking_id, expiry=escrow.now() + ttl), escrow.roles.customer)


def test_cancellation_reason_longer_than_32_bytes_is_rejected(escrow: EscrowHarness):
    booking_id = escrow.paid_booking()
    # chain/eip712 refuses to build such an authorization, so a (leaked) signer key signs the
    # contract's own digest of it directly.
    fits = escrow.cancel_auth(booking_id)
    too_long = (*fits.as_abi_tuple()[:5], "x" * 33, *fits.as_abi_tuple()[6:])
    digest = escrow.escrow.functions.hashCancellationAuthorization(too_long).call()
    signed = Account.unsafe_sign_hash(digest, escrow.roles.signer.private_key)
    call = escrow.escrow.functions.cancelBooking(too_long, signed.signature)
    escrow.expect_revert("ReasonTooLong", escrow.fail_as(escrow.roles.customer, call))
    receipt = escrow.cancel(escrow.cancel_auth(booking_id, reason="x" * 32), escrow.roles.customer)
    assert escrow.events(receipt, "BookingCancelled")[0]["reason"] == "x" * 32


def test_emergency_reason_longer_than_32_bytes_is_rejected(escrow: EscrowHarness):
    booking_id = escrow.paid_booking()
    free_text = "refund requested by alice@example.com, ticket 4711"
    escrow.expect_revert(
        "ReasonTooLong",
        escrow.fail_as(escrow.roles.operator, escrow.emergency_call(booking_id, free_text)),
    )
    # Multi-byte characters count as their UTF-8 bytes: 11 x 3 bytes = 33.
    escrow.expect_revert(
        "ReasonTooLong",
        escrow.fail_as(escrow.roles.operator, escrow.emergency_call(booking_id, "€" * 11)),
    )
    escrow.emergency(booking_id, "emergency_refund")
    assert escrow.booking(booking_id)[0] == STATUS_CANCELLED
