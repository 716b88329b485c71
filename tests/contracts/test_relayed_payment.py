"""createAndPayBookingWithAuthorization: a customer with USDC and no ETH pays through a relayer
with one ERC-3009 signature bound to one booking authorization; every way it must refuse."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.logs import DISCARD

from chain.eip712 import ReceiveWithAuthorization
from tests.contracts.harness import (
    CUSTOMER_FUNDS,
    DEFAULT_AMOUNT,
    STATUS_NONE,
    STATUS_PAID,
    EscrowHarness,
)

pytestmark = pytest.mark.integration

INVALID_SIGNATURE = "FiatTokenV2: invalid signature"
USED_OR_CANCELED = "FiatTokenV2: authorization is used or canceled"


@pytest.fixture
def customer(escrow: EscrowHarness) -> LocalAccount:
    return escrow.wallet_only_customer()


def _used(escrow: EscrowHarness, transfer: ReceiveWithAuthorization) -> bool:
    nonce = bytes.fromhex(transfer.nonce[2:])
    return bool(escrow.usdc.functions.authorizationState(transfer.payer, nonce).call())


def test_a_customer_with_no_eth_pays_through_a_relayer(
    escrow: EscrowHarness, customer: LocalAccount
):
    r = escrow.roles
    auth = escrow.booking_auth(customer=customer.address, with_inviter=True)
    transfer = escrow.transfer_for(auth)
    relayer_eth = escrow.eth_balance(r.other.address)

    receipt = escrow.relay(auth, escrow.sign_transfer(transfer, customer.key.hex()))

    assert escrow.balance(customer.address) == CUSTOMER_FUNDS - DEFAULT_AMOUNT
    assert escrow.balance(escrow.escrow.address) == DEFAULT_AMOUNT
    assert escrow.eth_balance(customer.address) == 0
    assert escrow.eth_balance(r.other.address) < relayer_eth  # the relayer paid the gas
    booking = escrow.booking(auth.booking_id)
    assert booking[:4] == (STATUS_PAID, customer.address, r.provider.address, r.inviter.address)
    assert booking[4:8] == (DEFAULT_AMOUNT, 5 * 10**6, 5 * 10**6, 90 * 10**6)
    # The same event as the direct path, so the listener needs nothing new.
    assert escrow.events(receipt, "BookingCreatedAndPaid") == [
        {
            "bookingId": bytes.fromhex(auth.booking_id[2:]),
            "customer": customer.address,
            "provider": r.provider.address,
            "inviter": r.inviter.address,
            "amount": DEFAULT_AMOUNT,
            "platformFeeRate": 500,
            "inviterFeeRate": 500,
        }
    ]
    used = escrow.usdc.events.AuthorizationUsed().process_receipt(receipt, errors=DISCARD)
    assert [dict(e["args"]) for e in used] == [
        {"authorizer": customer.address, "nonce": bytes.fromhex(transfer.nonce[2:])}
    ]
    assert escrow.escrow.functions.nonceUsed(auth.nonce).call() is True


def test_replaying_the_same_relayed_payment_is_refused(
    escrow: EscrowHarness, customer: LocalAccount
):
    auth = escrow.booking_auth(customer=customer.address)
    signed = escrow.sign_transfer(escrow.transfer_for(auth), customer.key.hex())
    escrow.relay(auth, signed)

    escrow.expect_revert(
        "BookingAlreadyExists", escrow.fail_as(escrow.roles.other, escrow.relay_call(auth, signed))
    )
    assert escrow.balance(escrow.escrow.address) == DEFAULT_AMOUNT
    assert escrow.balance(customer.address) == CUSTOMER_FUNDS - DEFAULT_AMOUNT


def test_a_transfer_signed_for_another_booking_pays_only_that_booking(
    escrow: EscrowHarness, customer: LocalAccount
):
    mine = escrow.booking_auth(customer=customer.address)
    other = escrow.booking_auth(customer=customer.address)
    signed_for_mine = escrow.sign_transfer(escrow.transfer_for(mine), customer.key.hex())

    escrow.expect_token_revert(
        INVALID_SIGNATURE,
        escrow.fail_as(escrow.roles.other, escrow.relay_call(other, signed_for_mine)),
    )
    assert escrow.booking(other.booking_id)[0] == STATUS_NONE
    # The failed attempt did not spend the signature: it still pays the booking it was made for.
    escrow.relay(mine, signed_for_mine)
    assert escrow.booking(mine.booking_id)[0] == STATUS_PAID


def test_a_transfer_of_another_amount_is_refused(escrow: EscrowHarness, customer: LocalAccount):
    auth = escrow.booking_auth(customer=customer.address)
    for value in (auth.amount - 1, auth.amount + 1):
        transfer = replace(escrow.transfer_for(auth), value=value)
        signed = escrow.sign_transfer(transfer, customer.key.hex())
        escrow.expect_token_revert(
            INVALID_SIGNATURE, escrow.fail_as(escrow.roles.other, escrow.relay_call(auth, signed))
        )
    assert escrow.balance(customer.address) == CUSTOMER_FUNDS


def test_only_the_booking_customers_money_and_signature_pay_it(
    escrow: EscrowHarness, customer: LocalAccount
):
    r = escrow.roles
    auth = escrow.booking_auth(customer=customer.address)
    bound = escrow.transfer_for(auth)
    # Someone else offers their own USDC for the customer's booking: the escrow names the payer.
    theirs = replace(bound, payer=r.stranger.address)
    escrow.send(escrow.usdc.functions.mint(r.stranger.address, DEFAULT_AMOUNT), r.stranger)
    # ... and someone else signs the customer's transfer.
    forged = escrow.sign_transfer(bound, r.stranger.private_key)
    for signed in (escrow.sign_transfer(theirs, r.stranger.private_key), forged):
        escrow.expect_token_revert(
            INVALID_SIGNATURE, escrow.fail_as(r.other, escrow.relay_call(auth, signed))
        )
    assert escrow.balance(r.stranger.address) == DEFAULT_AMOUNT
    assert escrow.booking(auth.booking_id)[0] == STATUS_NONE


def test_a_transfer_outside_its_window_is_refused_and_one_not_yet_valid_waits(
    escrow: EscrowHarness, customer: LocalAccount
):
    key = customer.key.hex()
    now = escrow.now()
    auth = escrow.booking_auth(customer=customer.address)
    expired = escrow.sign_transfer(escrow.transfer_for(auth, valid_before=now), key)
    escrow.expect_token_revert(
        "FiatTokenV2: authorization is expired",
        escrow.fail_as(escrow.roles.other, escrow.relay_call(auth, expired)),
    )

    early = escrow.sign_transfer(escrow.transfer_for(auth, valid_after=now + 60), key)
    escrow.expect_token_revert(
        "FiatTokenV2: authorization is not yet valid",
        escrow.fail_as(escrow.roles.other, escrow.relay_call(auth, early)),
    )
    escrow.travel(61)
    escrow.relay(auth, early)
    assert escrow.booking(auth.booking_id)[0] == STATUS_PAID


def test_an_expired_booking_authorization_is_refused_whatever_the_transfer_window(
    escrow: EscrowHarness, customer: LocalAccount
):
    auth = escrow.booking_auth(customer=customer.address)
    signed = escrow.sign_transfer(
        escrow.transfer_for(auth, valid_before=auth.expiry + 3600), customer.key.hex()
    )
    escrow.travel(auth.expiry - escrow.now() + 1)
    escrow.expect_revert(
        "AuthorizationExpired", escrow.fail_as(escrow.roles.other, escrow.relay_call(auth, signed))
    )
    assert not _used(escrow, escrow.transfer_for(auth))


def test_a_booking_authorization_the_signer_did_not_sign_is_refused(
    escrow: EscrowHarness, customer: LocalAccount
):
    auth = escrow.booking_auth(customer=customer.address)
    signed = escrow.sign_transfer(escrow.transfer_for(auth), customer.key.hex())
    # The customer signs the booking authorization too: only the platform's signer may.
    forged = escrow.sign(auth, key=customer.key.hex())
    escrow.expect_revert(
        "InvalidSignature",
        escrow.fail_as(escrow.roles.other, escrow.relay_call(auth, signed, forged)),
    )


def test_nobody_can_redeem_the_transfer_at_the_token_directly(
    escrow: EscrowHarness, customer: LocalAccount
):
    r = escrow.roles
    auth = escrow.booking_auth(customer=customer.address)
    transfer = escrow.transfer_for(auth)
    signed = escrow.sign_transfer(transfer, customer.key.hex())
    args = (
        transfer.payer,
        transfer.payee,
        transfer.value,
        transfer.valid_after,
        transfer.valid_before,
        bytes.fromhex(transfer.nonce[2:]),
        signed.v,
        bytes.fromhex(signed.r[2:]),
        bytes.fromhex(signed.s[2:]),
    )
    token = escrow.usdc.functions
    escrow.expect_token_revert(
        "FiatTokenV2: caller must be the payee",
        escrow.fail_as(r.stranger, token.receiveWithAuthorization(*args)),
    )
    # A ReceiveWithAuthorization signature is no TransferWithAuthorization one (other type hash).
    escrow.expect_token_revert(
        INVALID_SIGNATURE, escrow.fail_as(r.stranger, token.transferWithAuthorization(*args))
    )
    assert escrow.balance(customer.address) == CUSTOMER_FUNDS

    escrow.relay(auth, signed)
    assert escrow.booking(auth.booking_id)[0] == STATUS_PAID


def test_two_relayers_racing_in_one_block_pay_the_booking_once(
    escrow: EscrowHarness, customer: LocalAccount
):
    r = escrow.roles
    auth = escrow.booking_auth(customer=customer.address)
    call = escrow.relay_call(
        auth, escrow.sign_transfer(escrow.transfer_for(auth), customer.key.hex())
    )
    escrow.node.rpc("evm_setAutomine", False)
    # Explicit gas: an estimate would already see the first one pending and refuse the second.
    first = call.transact({"from": r.stranger.address, "gas": 400_000})
    second = call.transact({"from": r.other.address, "gas": 400_000})
    escrow.node.rpc("evm_mine")
    escrow.node.rpc("evm_setAutomine", True)

    receipts = [escrow.w3.eth.wait_for_transaction_receipt(tx) for tx in (first, second)]
    assert [rc["blockNumber"] for rc in receipts] == [receipts[0]["blockNumber"]] * 2
    assert [rc["status"] for rc in receipts] == [1, 0]
    assert len(escrow.events(receipts[0], "BookingCreatedAndPaid")) == 1
    assert escrow.balance(escrow.escrow.address) == DEFAULT_AMOUNT
    assert escrow.balance(customer.address) == CUSTOMER_FUNDS - DEFAULT_AMOUNT


def test_a_cancelled_transfer_authorization_cannot_pay(
    escrow: EscrowHarness, customer: LocalAccount
):
    auth = escrow.booking_auth(customer=customer.address)
    transfer = escrow.transfer_for(auth)
    signed = escrow.sign_transfer(transfer, customer.key.hex())
    # The customer (no ETH) signs a CancelAuthorization; anyone submits it.
    cancel = Account.sign_typed_data(
        customer.key,
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "CancelAuthorization": [
                    {"name": "authorizer", "type": "address"},
                    {"name": "nonce", "type": "bytes32"},
                ],
            },
            "primaryType": "CancelAuthorization",
            "domain": escrow.token_domain.as_typed_data(),
            "message": {"authorizer": customer.address, "nonce": transfer.nonce},
        },
    )
    nonce = bytes.fromhex(transfer.nonce[2:])
    escrow.send(
        escrow.usdc.functions.cancelAuthorization(
            customer.address,
            nonce,
            cancel.v,
            cancel.r.to_bytes(32, "big"),
            cancel.s.to_bytes(32, "big"),
        ),
        escrow.roles.stranger,
    )
    assert _used(escrow, transfer)

    escrow.expect_token_revert(
        USED_OR_CANCELED, escrow.fail_as(escrow.roles.other, escrow.relay_call(auth, signed))
    )
    assert escrow.booking(auth.booking_id)[0] == STATUS_NONE
    assert escrow.balance(customer.address) == CUSTOMER_FUNDS


def test_a_paused_escrow_takes_no_relayed_payment_and_the_transfer_stays_unused(
    escrow: EscrowHarness, customer: LocalAccount
):
    auth = escrow.booking_auth(customer=customer.address)
    transfer = escrow.transfer_for(auth)
    signed = escrow.sign_transfer(transfer, customer.key.hex())
    escrow.send(escrow.escrow.functions.pause(), escrow.roles.operator)

    escrow.expect_revert(
        "EnforcedPause", escrow.fail_as(escrow.roles.other, escrow.relay_call(auth, signed))
    )
    assert not _used(escrow, transfer)
    assert escrow.balance(customer.address) == CUSTOMER_FUNDS


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"platform_fee_rate": 999}, "FeeRateMismatch"),
        ({"release_time": 0}, "ReleaseTimeInPast"),
        ({"amount": 0}, "InvalidAmount"),
        ({"provider": "customer"}, "InvalidParties"),
        ({"nonce": "used"}, "NonceAlreadyUsed"),
    ],
)
def test_the_direct_paths_rules_hold_for_a_relayed_payment(
    escrow: EscrowHarness, customer: LocalAccount, change: dict[str, object], error: str
):
    """The transfer is the customer's, correctly signed: only the escrow's own rule refuses."""
    overrides: dict[str, Any] = dict(change)
    if overrides.get("provider") == "customer":
        overrides["provider"] = customer.address
    if overrides.get("nonce") == "used":
        paid = escrow.booking_auth()
        escrow.pay(paid)
        overrides["nonce"] = paid.nonce
    auth = escrow.booking_auth(customer=customer.address, **overrides)
    signed = escrow.sign_transfer(escrow.transfer_for(auth), customer.key.hex())
    escrow.expect_revert(error, escrow.fail_as(escrow.roles.other, escrow.relay_call(auth, signed)))
    assert escrow.balance(customer.address) == CUSTOMER_FUNDS
