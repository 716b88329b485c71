"""A recipient the token refuses (USDC blocklist) gets an owed balance; the other legs still pay."""

from __future__ import annotations

import pytest

from tests.contracts.harness import CUSTOMER_FUNDS, DEFAULT_AMOUNT, EscrowHarness

pytestmark = pytest.mark.integration


def _blocklist(escrow: EscrowHarness, address: str) -> None:
    escrow.send(escrow.usdc.functions.blocklist(address), escrow.roles.owner)


def test_blocklisted_provider_is_owed_and_withdraws_to_itself_once_cleared(
    escrow: EscrowHarness,
):
    r = escrow.roles
    booking_id = escrow.paid_booking(with_inviter=True)
    _blocklist(escrow, r.provider.address)

    receipt = escrow.complete(booking_id, r.customer)

    provider_amount = 90 * 10**6
    assert escrow.events(receipt, "PaymentOwed") == [
        {
            "bookingId": bytes.fromhex(booking_id[2:]),
            "recipient": r.provider.address,
            "amount": provider_amount,
        }
    ]
    assert len(escrow.events(receipt, "ServiceCompleted")) == 1
    assert escrow.balances() == {
        "customer": CUSTOMER_FUNDS - DEFAULT_AMOUNT,
        "provider": 0,
        "inviter": 5 * 10**6,
        "treasury": 5 * 10**6,
        "operator": 0,
        "stranger": 0,
        "escrow": provider_amount,
    }
    c = escrow.escrow.functions
    assert c.owedBalance(r.provider.address).call() == provider_amount
    assert c.totalOwed().call() == provider_amount

    escrow.send(escrow.usdc.functions.unBlocklist(r.provider.address), r.owner)
    receipt = escrow.send(c.withdrawOwed(), r.provider)

    assert escrow.events(receipt, "OwedWithdrawn") == [
        {"recipient": r.provider.address, "to": r.provider.address, "amount": provider_amount}
    ]
    assert escrow.balance(r.provider.address) == provider_amount
    assert escrow.balance(escrow.escrow.address) == 0
    assert c.owedBalance(r.provider.address).call() == 0
    assert c.totalOwed().call() == 0
    escrow.expect_revert("InvalidAmount", escrow.fail_as(r.provider, c.withdrawOwed()))


def test_a_blocklisted_party_cannot_move_its_owed_balance_to_another_address(
    escrow: EscrowHarness,
):
    r = escrow.roles
    booking_id = escrow.paid_booking()
    _blocklist(escrow, r.provider.address)
    escrow.complete(booking_id, r.customer)
    c = escrow.escrow.functions

    # The old withdrawOwed(to) let it name a clean address; now there is no such parameter,
    # and the one function that takes a destination is the owner's.
    assert [f["inputs"] for f in escrow.escrow_artifact.abi if f.get("name") == "withdrawOwed"] == [
        []
    ]
    escrow.expect_revert("AccountBlocklisted", escrow.fail_as(r.provider, c.withdrawOwed()))
    escrow.expect_revert(
        "OwnableUnauthorizedAccount",
        escrow.fail_as(r.provider, c.withdrawOwedTo(r.provider.address, r.other.address)),
    )
    assert c.owedBalance(r.provider.address).call() == 90 * 10**6
    assert escrow.balance(r.other.address) == 0


def test_the_owner_may_redirect_an_owed_balance_and_it_is_recorded(escrow: EscrowHarness):
    r = escrow.roles
    booking_id = escrow.paid_booking()
    _blocklist(escrow, r.provider.address)
    escrow.complete(booking_id, r.customer)
    c = escrow.escrow.functions

    receipt = escrow.send(c.withdrawOwedTo(r.provider.address, r.other.address), r.owner)

    assert escrow.events(receipt, "OwedRedirected") == [
        {"party": r.provider.address, "to": r.other.address, "amount": 90 * 10**6}
    ]
    assert escrow.balance(r.other.address) == 90 * 10**6
    assert c.owedBalance(r.provider.address).call() == 0
    assert c.totalOwed().call() == 0
    zero = "0x0000000000000000000000000000000000000000"
    escrow.expect_revert(
        "ZeroAddress", escrow.fail_as(r.owner, c.withdrawOwedTo(r.provider.address, zero))
    )


def test_owed_balance_survives_a_failed_withdrawal(escrow: EscrowHarness):
    r = escrow.roles
    booking_id = escrow.paid_booking()
    _blocklist(escrow, r.provider.address)
    escrow.complete(booking_id, r.customer)
    c = escrow.escrow.functions

    # Withdrawing while still blocked fails as a whole; nothing is lost.
    escrow.expect_revert("AccountBlocklisted", escrow.fail_as(r.provider, c.withdrawOwed()))
    assert c.owedBalance(r.provider.address).call() == 90 * 10**6

    escrow.send(escrow.usdc.functions.unBlocklist(r.provider.address), r.owner)
    escrow.send(c.withdrawOwed(), r.provider)
    assert escrow.balance(r.provider.address) == 90 * 10**6


def test_blocklisted_customer_refund_becomes_owed(escrow: EscrowHarness):
    r = escrow.roles
    booking_id = escrow.paid_booking()
    _blocklist(escrow, r.customer.address)

    receipt = escrow.emergency(booking_id)

    assert [e["recipient"] for e in escrow.events(receipt, "PaymentOwed")] == [r.customer.address]
    assert escrow.escrow.functions.owedBalance(r.customer.address).call() == DEFAULT_AMOUNT
    assert escrow.balance(escrow.escrow.address) == DEFAULT_AMOUNT


def test_blocklisted_treasury_and_inviter_on_cancellation(escrow: EscrowHarness):
    r = escrow.roles
    booking_id = escrow.paid_booking(with_inviter=True)
    _blocklist(escrow, r.treasury.address)
    _blocklist(escrow, r.inviter.address)
    auth = escrow.cancel_auth(
        booking_id,
        customer_amount=60 * 10**6,
        provider_amount=30 * 10**6,
        platform_amount=5 * 10**6,
        inviter_amount=5 * 10**6,
    )

    receipt = escrow.cancel(auth, r.provider)

    owed = {e["recipient"]: e["amount"] for e in escrow.events(receipt, "PaymentOwed")}
    assert owed == {r.treasury.address: 5 * 10**6, r.inviter.address: 5 * 10**6}
    balances = escrow.balances()
    assert balances["customer"] == CUSTOMER_FUNDS - DEFAULT_AMOUNT + 60 * 10**6
    assert balances["provider"] == 30 * 10**6
    assert balances["escrow"] == 10 * 10**6
    assert escrow.escrow.functions.totalOwed().call() == 10 * 10**6
