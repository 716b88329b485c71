"""completeService: who may release a paid booking and when, with every party's balance."""

from __future__ import annotations

import pytest

from tests.contracts.harness import (
    CUSTOMER_FUNDS,
    DEFAULT_AMOUNT,
    RELEASE_DELAY,
    STATUS_COMPLETED,
    EscrowHarness,
)

pytestmark = pytest.mark.integration


def test_customer_completes_before_release_time_without_inviter(escrow: EscrowHarness):
    booking_id = escrow.paid_booking()
    r = escrow.roles

    receipt = escrow.complete(booking_id, r.customer)

    assert escrow.balances() == {
        "customer": CUSTOMER_FUNDS - DEFAULT_AMOUNT,
        "provider": 90 * 10**6,
        "inviter": 0,
        "treasury": 10 * 10**6,
        "operator": 0,
        "stranger": 0,
        "escrow": 0,
    }
    assert escrow.booking(booking_id)[0] == STATUS_COMPLETED
    assert escrow.events(receipt, "ServiceCompleted") == [
        {
            "bookingId": bytes.fromhex(booking_id[2:]),
            "provider": r.provider.address,
            "providerAmount": 90 * 10**6,
            "platformFee": 10 * 10**6,
            "inviterFee": 0,
        }
    ]
    assert escrow.events(receipt, "PaymentOwed") == []


def test_customer_completes_with_inviter(escrow: EscrowHarness):
    booking_id = escrow.paid_booking(with_inviter=True, amount=33_333_333)

    escrow.complete(booking_id, escrow.roles.customer)

    # 5 % of 33.333333 rounds down to 1.666666 for each fee; the provider gets the remainder.
    assert escrow.balances() == {
        "customer": CUSTOMER_FUNDS - 33_333_333,
        "provider": 33_333_333 - 2 * 1_666_666,
        "inviter": 1_666_666,
        "treasury": 1_666_666,
        "operator": 0,
        "stranger": 0,
        "escrow": 0,
    }


@pytest.mark.parametrize("who", ["stranger", "operator", "provider"])
def test_others_cannot_complete_before_release_time(escrow: EscrowHarness, who: str):
    booking_id = escrow.paid_booking()
    sender = getattr(escrow.roles, who)
    escrow.expect_revert(
        "ReleaseTimeNotReached", escrow.fail_as(sender, escrow.complete_call(booking_id))
    )
    assert escrow.balance(escrow.escrow.address) == DEFAULT_AMOUNT


@pytest.mark.parametrize("who", ["stranger", "operator"])
def test_anyone_completes_after_release_time(escrow: EscrowHarness, who: str):
    booking_id = escrow.paid_booking(with_inviter=True)
    escrow.travel(RELEASE_DELAY + 1)

    escrow.complete(booking_id, getattr(escrow.roles, who))

    balances = escrow.balances()
    assert (balances["provider"], balances["treasury"], balances["inviter"]) == (
        90 * 10**6,
        5 * 10**6,
        5 * 10**6,
    )
    assert balances["escrow"] == 0
    assert balances[who] == 0  # the caller gets nothing for completing


def test_completion_exactly_at_release_time_is_allowed(escrow: EscrowHarness):
    auth = escrow.booking_auth()
    escrow.pay(auth)
    escrow.node.rpc("evm_setNextBlockTimestamp", auth.release_time)
    # An explicit gas limit skips estimation, which would run at the current (earlier) time.
    tx = escrow.complete_call(auth.booking_id).transact(
        {"from": escrow.roles.stranger.address, "gas": 300_000}
    )
    receipt = escrow.w3.eth.wait_for_transaction_receipt(tx)
    assert receipt["status"] == 1
    assert escrow.w3.eth.get_block(receipt["blockNumber"])["timestamp"] == auth.release_time
    assert escrow.balance(escrow.roles.provider.address) == 90 * 10**6


def test_double_completion_is_rejected(escrow: EscrowHarness):
    booking_id = escrow.paid_booking()
    escrow.complete(booking_id, escrow.roles.customer)
    escrow.expect_revert(
        "BookingNotPaid", escrow.fail_as(escrow.roles.customer, escrow.complete_call(booking_id))
    )


def test_unknown_booking_cannot_be_completed(escrow: EscrowHarness):
    escrow.expect_revert(
        "BookingNotPaid",
        escrow.fail_as(escrow.roles.customer, escrow.complete_call(escrow.new_booking_id())),
    )
