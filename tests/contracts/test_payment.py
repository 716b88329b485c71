"""createAndPayBooking: the happy paths with exact balances, and every way it must refuse."""

from __future__ import annotations

from typing import Any

import pytest

from chain.eip712 import ZERO_ADDRESS, Eip712Domain
from tests.contracts.harness import CUSTOMER_FUNDS, DEFAULT_AMOUNT, STATUS_PAID, EscrowHarness

pytestmark = pytest.mark.integration


def test_pay_without_inviter_escrows_the_amount_and_stores_the_split(escrow: EscrowHarness):
    auth = escrow.booking_auth(amount=123_456_789)

    receipt = escrow.pay(auth)

    assert escrow.balances() == {
        "customer": CUSTOMER_FUNDS - 123_456_789,
        "provider": 0,
        "inviter": 0,
        "treasury": 0,
        "operator": 0,
        "stranger": 0,
        "escrow": 123_456_789,
    }
    block = escrow.w3.eth.get_block(receipt["blockNumber"])
    r = escrow.roles
    assert escrow.booking(auth.booking_id) == (
        STATUS_PAID,
        r.customer.address,
        r.provider.address,
        ZERO_ADDRESS,
        123_456_789,
        12_345_678,  # 10 %, rounded down
        0,
        123_456_789 - 12_345_678,
        auth.release_time,
        block["timestamp"],
    )
    assert escrow.events(receipt, "BookingCreatedAndPaid") == [
        {
            "bookingId": bytes.fromhex(auth.booking_id[2:]),
            "customer": r.customer.address,
            "provider": r.provider.address,
            "inviter": ZERO_ADDRESS,
            "amount": 123_456_789,
            "platformFeeRate": 1000,
            "inviterFeeRate": 0,
        }
    ]
    assert escrow.escrow.functions.nonceUsed(auth.nonce).call() is True


def test_pay_with_inviter_splits_five_and_five_percent(escrow: EscrowHarness):
    auth = escrow.booking_auth(with_inviter=True, amount=DEFAULT_AMOUNT)

    escrow.pay(auth)

    booking = escrow.booking(auth.booking_id)
    assert booking[3] == escrow.roles.inviter.address
    assert booking[4:8] == (DEFAULT_AMOUNT, 5 * 10**6, 5 * 10**6, 90 * 10**6)
    assert escrow.balance(escrow.escrow.address) == DEFAULT_AMOUNT
    assert escrow.balance(escrow.roles.customer.address) == CUSTOMER_FUNDS - DEFAULT_AMOUNT


def test_topic1_is_the_booking_id(escrow: EscrowHarness):
    auth = escrow.booking_auth()
    receipt = escrow.pay(auth)
    (log,) = [lg for lg in receipt["logs"] if lg["address"] == escrow.escrow.address]
    assert log["topics"][1] == bytes.fromhex(auth.booking_id[2:])


def test_wrong_signer_is_rejected(escrow: EscrowHarness):
    auth = escrow.booking_auth()
    forged = escrow.sign(auth, key=escrow.roles.other.private_key)
    escrow.expect_revert(
        "InvalidSignature", escrow.fail_as(escrow.roles.customer, escrow.pay_call(auth, forged))
    )


def test_signature_over_other_fields_is_rejected(escrow: EscrowHarness):
    signed_for = escrow.booking_auth(amount=DEFAULT_AMOUNT)
    tampered = escrow.booking_auth(
        amount=1 * 10**6,
        booking_id=signed_for.booking_id,
        nonce=signed_for.nonce,
        release_time=signed_for.release_time,
        expiry=signed_for.expiry,
    )
    escrow.expect_revert(
        "InvalidSignature",
        escrow.fail_as(escrow.roles.customer, escrow.pay_call(tampered, escrow.sign(signed_for))),
    )


def test_expired_authorization_is_rejected(escrow: EscrowHarness):
    auth = escrow.booking_auth(expiry=escrow.now() - 1)
    escrow.expect_revert(
        "AuthorizationExpired", escrow.fail_as(escrow.roles.customer, escrow.pay_call(auth))
    )


def test_authorization_is_usable_until_its_expiry_then_not(escrow: EscrowHarness):
    auth = escrow.booking_auth()
    escrow.travel(auth.expiry - escrow.now() + 1)
    escrow.expect_revert(
        "AuthorizationExpired", escrow.fail_as(escrow.roles.customer, escrow.pay_call(auth))
    )


def test_double_pay_with_the_same_authorization_is_rejected(escrow: EscrowHarness):
    auth = escrow.booking_auth()
    escrow.pay(auth)
    escrow.expect_revert(
        "BookingAlreadyExists", escrow.fail_as(escrow.roles.customer, escrow.pay_call(auth))
    )
    assert escrow.balance(escrow.escrow.address) == DEFAULT_AMOUNT


def test_replayed_booking_id_with_a_fresh_nonce_is_rejected(escrow: EscrowHarness):
    first = escrow.booking_auth()
    escrow.pay(first)
    again = escrow.booking_auth(booking_id=first.booking_id)
    assert again.nonce != first.nonce
    escrow.expect_revert(
        "BookingAlreadyExists", escrow.fail_as(escrow.roles.customer, escrow.pay_call(again))
    )


def test_reused_nonce_is_rejected(escrow: EscrowHarness):
    first = escrow.booking_auth()
    escrow.pay(first)
    other_booking = escrow.booking_auth(nonce=first.nonce)
    escrow.expect_revert(
        "NonceAlreadyUsed",
        escrow.fail_as(escrow.roles.customer, escrow.pay_call(other_booking)),
    )


def test_only_the_customer_may_submit(escrow: EscrowHarness):
    auth = escrow.booking_auth()
    for sender in (escrow.roles.stranger, escrow.roles.provider, escrow.roles.operator):
        escrow.expect_revert("NotCustomer", escrow.fail_as(sender, escrow.pay_call(auth)))


@pytest.mark.parametrize(
    ("with_inviter", "platform", "inviter"),
    [
        (False, 500, 0),  # the with-inviter rate without an inviter
        (False, 1000, 500),  # an inviter fee without an inviter
        (False, 900, 0),
        (True, 1000, 0),  # the no-inviter rate with an inviter
        (True, 500, 400),
        (True, 400, 500),
    ],
)
def test_fee_rates_off_policy_are_rejected(
    escrow: EscrowHarness, with_inviter: bool, platform: int, inviter: int
):
    auth = escrow.booking_auth(
        with_inviter=with_inviter, platform_fee_rate=platform, inviter_fee_rate=inviter
    )
    escrow.expect_revert(
        "FeeRateMismatch", escrow.fail_as(escrow.roles.customer, escrow.pay_call(auth))
    )


def test_zero_amount_is_rejected(escrow: EscrowHarness):
    auth = escrow.booking_auth(amount=0)
    escrow.expect_revert(
        "InvalidAmount", escrow.fail_as(escrow.roles.customer, escrow.pay_call(auth))
    )


def test_amount_beyond_uint128_is_rejected(escrow: EscrowHarness):
    auth = escrow.booking_auth(amount=2**128)
    escrow.expect_revert(
        "InvalidAmount", escrow.fail_as(escrow.roles.customer, escrow.pay_call(auth))
    )


@pytest.mark.parametrize(
    "case", ["customer_is_provider", "no_provider", "inviter_is_customer", "inviter_is_provider"]
)
def test_invalid_parties_are_rejected(escrow: EscrowHarness, case: str):
    r = escrow.roles
    with_inviter: dict[str, Any] = {"platform_fee_rate": 500, "inviter_fee_rate": 500}
    cases: dict[str, dict[str, Any]] = {
        "customer_is_provider": {"provider": r.customer.address},
        "no_provider": {"provider": ZERO_ADDRESS},
        "inviter_is_customer": {"inviter": r.customer.address, **with_inviter},
        "inviter_is_provider": {"inviter": r.provider.address, **with_inviter},
    }
    auth = escrow.booking_auth(**cases[case])
    escrow.expect_revert("InvalidParties", escrow.fail_as(r.customer, escrow.pay_call(auth)))


def test_signature_for_another_chain_id_is_rejected(escrow: EscrowHarness):
    auth = escrow.booking_auth()
    other_chain = Eip712Domain(chain_id=8453, verifying_contract=escrow.escrow.address)
    sig = escrow.sign(auth, domain=other_chain)
    escrow.expect_revert(
        "InvalidSignature", escrow.fail_as(escrow.roles.customer, escrow.pay_call(auth, sig))
    )


def test_signature_for_another_contract_is_rejected(escrow: EscrowHarness):
    auth = escrow.booking_auth()
    other = Eip712Domain(chain_id=escrow.domain.chain_id, verifying_contract=escrow.usdc.address)
    sig = escrow.sign(auth, domain=other)
    escrow.expect_revert(
        "InvalidSignature", escrow.fail_as(escrow.roles.customer, escrow.pay_call(auth, sig))
    )


def test_changing_the_chain_id_invalidates_old_signatures(escrow: EscrowHarness):
    auth = escrow.booking_auth()
    sig = escrow.sign(auth)  # valid for chain 31337
    escrow.node.rpc("anvil_setChainId", 31338)
    try:
        domain = escrow.escrow.functions.eip712Domain().call()
        assert domain[3] == 31338  # the contract rebuilds its separator for the new chain
        escrow.expect_revert(
            "InvalidSignature",
            escrow.fail_as(escrow.roles.customer, escrow.pay_call(auth, sig)),
        )
    finally:
        escrow.node.rpc("anvil_setChainId", escrow.node.chain_id)
    escrow.pay(auth, sig)  # the same signature is good again on its own chain


SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def test_malleable_high_s_signature_is_rejected(escrow: EscrowHarness):
    auth = escrow.booking_auth()
    sig = escrow.sign(auth)
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    # (r, n - s, flipped v) recovers the same address; OZ ECDSA must refuse it.
    twin = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    escrow.expect_revert(
        "InvalidSignature", escrow.fail_as(escrow.roles.customer, escrow.pay_call(auth, twin))
    )
    escrow.pay(auth, sig)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda sig: sig[:64],  # 64-byte (ERC-2098 style) signature
        lambda sig: sig + b"\x00",
        lambda sig: sig[:64] + b"\x1d",  # v = 29
        lambda sig: b"",
    ],
)
def test_malformed_signatures_are_rejected(escrow: EscrowHarness, mangle):
    auth = escrow.booking_auth()
    bad = mangle(escrow.sign(auth))
    escrow.expect_revert(
        "InvalidSignature", escrow.fail_as(escrow.roles.customer, escrow.pay_call(auth, bad))
    )


def test_insufficient_allowance_reverts_without_state_change(escrow: EscrowHarness):
    r = escrow.roles
    escrow.send(escrow.usdc.functions.approve(escrow.escrow.address, 0), r.customer)
    auth = escrow.booking_auth()
    escrow.expect_revert(
        "ERC20InsufficientAllowance", escrow.fail_as(r.customer, escrow.pay_call(auth))
    )
    assert escrow.booking(auth.booking_id)[0] == 0
    assert escrow.escrow.functions.nonceUsed(auth.nonce).call() is False


@pytest.mark.parametrize("party", ["customer", "provider", "inviter"])
def test_the_escrow_itself_cannot_be_a_party(escrow: EscrowHarness, party: str):
    r = escrow.roles
    itself = escrow.escrow.address
    fields: dict[str, Any] = {party: itself}
    if party == "inviter":
        fields |= {"platform_fee_rate": 500, "inviter_fee_rate": 500}
    auth = escrow.booking_auth(**fields)
    # Only the customer may submit, so "the escrow as customer" is simulated as a call from it.
    sender = itself if party == "customer" else r.customer.address
    escrow.expect_revert("InvalidParties", lambda: escrow.pay_call(auth).call({"from": sender}))


def test_a_zero_customer_is_rejected(escrow: EscrowHarness):
    auth = escrow.booking_auth(customer=ZERO_ADDRESS)
    # msg.sender must equal the customer, so only a call "from" the zero address gets this far.
    escrow.expect_revert(
        "InvalidParties", lambda: escrow.pay_call(auth).call({"from": ZERO_ADDRESS})
    )


def test_release_time_beyond_uint64_is_rejected(escrow: EscrowHarness):
    auth = escrow.booking_auth(release_time=2**64)
    escrow.expect_revert(
        "InvalidAmount", escrow.fail_as(escrow.roles.customer, escrow.pay_call(auth))
    )


@pytest.mark.parametrize("offset", [-3600, -1, 0])
def test_release_time_already_reached_is_rejected(escrow: EscrowHarness, offset: int):
    # With the release time reached, anyone could complete the booking right after paying.
    # offset 0 is the latest block's time: any block the payment lands in is at or after it.
    auth = escrow.booking_auth(release_time=escrow.now() + offset)
    escrow.expect_revert(
        "ReleaseTimeInPast", escrow.fail_as(escrow.roles.customer, escrow.pay_call(auth))
    )


def test_payment_expiring_beyond_the_max_ttl_is_rejected(escrow: EscrowHarness):
    ttl = escrow.escrow.functions.MAX_AUTH_TTL().call()
    too_long = escrow.booking_auth(expiry=escrow.now() + 7 * 86400)
    escrow.expect_revert(
        "AuthorizationTooLong", escrow.fail_as(escrow.roles.customer, escrow.pay_call(too_long))
    )
    escrow.pay(escrow.booking_auth(expiry=escrow.now() + ttl))
