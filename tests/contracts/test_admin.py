"""Roles, pause, fee policy and key rotation: who may change what, and what pause leaves open."""

from __future__ import annotations

import pytest

from tests.contracts.harness import CUSTOMER_FUNDS, DEFAULT_AMOUNT, EscrowHarness

pytestmark = pytest.mark.integration


def test_constructor_wires_roles_policy_and_domain(escrow: EscrowHarness):
    c = escrow.escrow.functions
    r = escrow.roles
    assert c.owner().call() == r.owner.address
    assert c.signer().call() == r.signer.address
    assert c.operator().call() == r.operator.address
    assert c.treasury().call() == r.treasury.address
    assert c.usdc().call() == escrow.usdc.address
    assert c.feePolicy().call() == [1000, 500, 500]
    assert c.MAX_TOTAL_FEE_BPS().call() == 2000
    assert c.paused().call() is False
    fields, name, version, chain_id, contract, salt, extensions = c.eip712Domain().call()
    assert (fields, name, version, chain_id, contract) == (
        b"\x0f",
        "BookingEscrow",
        "1",
        escrow.node.chain_id,
        escrow.escrow.address,
    )
    assert (salt, extensions) == (b"\x00" * 32, [])


def test_pause_stops_new_payments_only(escrow: EscrowHarness):
    r = escrow.roles
    to_complete = escrow.paid_booking()
    to_cancel = escrow.paid_booking()
    to_refund = escrow.paid_booking()
    escrow.send(escrow.escrow.functions.pause(), r.operator)

    escrow.expect_revert(
        "EnforcedPause", escrow.fail_as(r.customer, escrow.pay_call(escrow.booking_auth()))
    )
    escrow.complete(to_complete, r.customer)
    escrow.cancel(escrow.cancel_auth(to_cancel), r.customer)
    escrow.emergency(to_refund)

    assert escrow.balances() == {
        "customer": CUSTOMER_FUNDS - DEFAULT_AMOUNT,  # only the completed booking was spent
        "provider": 90 * 10**6,
        "inviter": 0,
        "treasury": 10 * 10**6,
        "operator": 0,
        "stranger": 0,
        "escrow": 0,
    }

    escrow.send(escrow.escrow.functions.unpause(), r.owner)
    escrow.pay(escrow.booking_auth())


def test_owner_may_pause_too(escrow: EscrowHarness):
    escrow.send(escrow.escrow.functions.pause(), escrow.roles.owner)
    assert escrow.escrow.functions.paused().call() is True


@pytest.mark.parametrize("who", ["signer", "customer", "stranger"])
def test_others_cannot_pause(escrow: EscrowHarness, who: str):
    escrow.expect_revert(
        "NotAuthorized", escrow.fail_as(getattr(escrow.roles, who), escrow.escrow.functions.pause())
    )


def test_operator_cannot_unpause(escrow: EscrowHarness):
    escrow.send(escrow.escrow.functions.pause(), escrow.roles.operator)
    escrow.expect_revert(
        "OwnableUnauthorizedAccount",
        escrow.fail_as(escrow.roles.operator, escrow.escrow.functions.unpause()),
    )


def test_fee_policy_change_applies_to_new_authorizations(escrow: EscrowHarness):
    r = escrow.roles
    old = escrow.booking_auth()
    receipt = escrow.send(escrow.escrow.functions.setFeePolicy(800, 400, 300), r.owner)
    assert escrow.events(receipt, "FeePolicyUpdated") == [
        {"platformFeeBps": 800, "platformFeeWithInviterBps": 400, "inviterFeeBps": 300}
    ]

    escrow.expect_revert("FeeRateMismatch", escrow.fail_as(r.customer, escrow.pay_call(old)))
    new = escrow.booking_auth(with_inviter=True, platform_fee_rate=400, inviter_fee_rate=300)
    escrow.pay(new)
    assert escrow.booking(new.booking_id)[4:8] == (
        DEFAULT_AMOUNT,
        4 * 10**6,
        3 * 10**6,
        93 * 10**6,
    )


@pytest.mark.parametrize("policy", [(2001, 500, 500), (1000, 1500, 501), (0, 2001, 0)])
def test_fee_policy_above_the_cap_is_rejected(escrow: EscrowHarness, policy):
    escrow.expect_revert(
        "FeeAboveCap",
        escrow.fail_as(escrow.roles.owner, escrow.escrow.functions.setFeePolicy(*policy)),
    )


def test_fee_policy_at_the_cap_is_accepted(escrow: EscrowHarness):
    escrow.send(escrow.escrow.functions.setFeePolicy(2000, 1000, 1000), escrow.roles.owner)
    assert escrow.escrow.functions.feePolicy().call() == [2000, 1000, 1000]


@pytest.mark.parametrize(
    "call",
    [
        lambda c, a: c.setFeePolicy(0, 0, 0),
        lambda c, a: c.setSigner(a),
        lambda c, a: c.setOperator(a),
        lambda c, a: c.setTreasury(a),
        lambda c, a: c.transferOwnership(a),
        lambda c, a: c.withdrawOwedTo(a, a),
        lambda c, a: c.unpause(),
    ],
)
@pytest.mark.parametrize("who", ["signer", "operator", "stranger"])
def test_only_the_owner_administers(escrow: EscrowHarness, call, who: str):
    sender = getattr(escrow.roles, who)
    escrow.expect_revert(
        "OwnableUnauthorizedAccount",
        escrow.fail_as(sender, call(escrow.escrow.functions, sender.address)),
    )


def test_signer_rotation_emits_and_invalidates_the_old_key(escrow: EscrowHarness):
    r = escrow.roles
    auth = escrow.booking_auth()
    old_signature = escrow.sign(auth)
    receipt = escrow.send(escrow.escrow.functions.setSigner(r.other.address), r.owner)
    assert escrow.events(receipt, "SignerUpdated") == [
        {"previousSigner": r.signer.address, "newSigner": r.other.address}
    ]
    escrow.expect_revert(
        "InvalidSignature", escrow.fail_as(r.customer, escrow.pay_call(auth, old_signature))
    )
    escrow.pay(auth, escrow.sign(auth, key=r.other.private_key))


def test_operator_rotation_moves_the_emergency_power(escrow: EscrowHarness):
    r = escrow.roles
    booking_id = escrow.paid_booking()
    receipt = escrow.send(escrow.escrow.functions.setOperator(r.other.address), r.owner)
    assert escrow.events(receipt, "OperatorUpdated") == [
        {"previousOperator": r.operator.address, "newOperator": r.other.address}
    ]
    escrow.expect_revert(
        "NotAuthorized", escrow.fail_as(r.operator, escrow.emergency_call(booking_id))
    )
    escrow.emergency(booking_id, sender=r.other)


def test_treasury_rotation_applies_to_bookings_paid_afterwards_only(escrow: EscrowHarness):
    r = escrow.roles
    c = escrow.escrow.functions
    escrowed = escrow.paid_booking()
    to_cancel = escrow.paid_booking()
    receipt = escrow.send(c.setTreasury(r.other.address), r.owner)
    assert escrow.events(receipt, "TreasuryUpdated") == [
        {"previousTreasury": r.treasury.address, "newTreasury": r.other.address}
    ]
    assert c.treasury().call() == r.other.address
    paid_after = escrow.paid_booking()
    id_bytes = bytes.fromhex(escrowed[2:])
    assert c.bookingTreasury(id_bytes).call() == r.treasury.address
    assert c.bookingTreasury(bytes.fromhex(paid_after[2:])).call() == r.other.address

    # The fee of a booking escrowed before the change still goes to the treasury of its payment,
    # on completion and on cancellation alike.
    escrow.complete(escrowed, r.customer)
    escrow.cancel(
        escrow.cancel_auth(to_cancel, customer_amount=90 * 10**6, platform_amount=10 * 10**6),
        r.customer,
    )
    assert escrow.balance(r.treasury.address) == 20 * 10**6
    assert escrow.balance(r.other.address) == 0
    escrow.complete(paid_after, r.customer)
    assert escrow.balance(r.other.address) == 10 * 10**6


def test_booking_treasury_of_an_unpaid_booking_is_zero(escrow: EscrowHarness):
    unpaid = bytes.fromhex(escrow.new_booking_id()[2:])
    assert escrow.escrow.functions.bookingTreasury(unpaid).call() == (
        "0x0000000000000000000000000000000000000000"
    )


@pytest.mark.parametrize("setter", ["setSigner", "setOperator", "setTreasury"])
def test_zero_address_roles_are_rejected(escrow: EscrowHarness, setter: str):
    zero = "0x0000000000000000000000000000000000000000"
    call = getattr(escrow.escrow.functions, setter)(zero)
    escrow.expect_revert("ZeroAddress", escrow.fail_as(escrow.roles.owner, call))


def test_ownership_transfer_takes_two_steps_and_cannot_be_renounced(escrow: EscrowHarness):
    r = escrow.roles
    c = escrow.escrow.functions
    escrow.expect_revert("NotAuthorized", escrow.fail_as(r.owner, c.renounceOwnership()))
    escrow.send(c.transferOwnership(r.other.address), r.owner)
    assert c.owner().call() == r.owner.address
    assert c.pendingOwner().call() == r.other.address
    escrow.send(c.acceptOwnership(), r.other)
    assert c.owner().call() == r.other.address


@pytest.mark.parametrize("who", ["owner", "operator", "stranger"])
def test_only_the_pending_owner_may_accept_ownership(escrow: EscrowHarness, who: str):
    r = escrow.roles
    c = escrow.escrow.functions
    escrow.send(c.transferOwnership(r.other.address), r.owner)
    escrow.expect_revert(
        "OwnableUnauthorizedAccount", escrow.fail_as(getattr(r, who), c.acceptOwnership())
    )
    assert c.owner().call() == r.owner.address
    assert c.pendingOwner().call() == r.other.address


@pytest.mark.parametrize("who", ["operator", "owner"])
def test_revoking_the_signer_refuses_every_authorization_at_once(escrow: EscrowHarness, who: str):
    r = escrow.roles
    c = escrow.escrow.functions
    to_complete = escrow.paid_booking()
    to_refund = escrow.paid_booking()
    payment = escrow.booking_auth()
    cancellation = escrow.cancel_auth(escrow.paid_booking())

    receipt = escrow.send(c.revokeSigner(), getattr(r, who))

    assert escrow.events(receipt, "SignerUpdated") == [
        {"previousSigner": r.signer.address, "newSigner": "0x" + "00" * 20}
    ]
    escrow.expect_revert("InvalidSignature", escrow.fail_as(r.customer, escrow.pay_call(payment)))
    escrow.expect_revert(
        "InvalidSignature", escrow.fail_as(r.customer, escrow.cancel_call(cancellation))
    )
    # Money that needs no signature still moves.
    escrow.complete(to_complete, r.customer)
    escrow.emergency(to_refund)
    # A new signer comes from the owner (through the timelock in a real deployment).
    escrow.send(c.setSigner(r.other.address), r.owner)
    escrow.pay(payment, escrow.sign(payment, key=r.other.private_key))


@pytest.mark.parametrize("who", ["signer", "customer", "provider", "stranger"])
def test_others_cannot_revoke_the_signer(escrow: EscrowHarness, who: str):
    escrow.expect_revert(
        "NotAuthorized",
        escrow.fail_as(getattr(escrow.roles, who), escrow.escrow.functions.revokeSigner()),
    )
