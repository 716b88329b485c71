"""The escrow against a token that misbehaves: fee-on-transfer, gas burning and re-entry."""

from __future__ import annotations

from typing import Any

import pytest
from web3 import Web3

from bookme.embedded.anvil import AnvilNode
from tests.contracts.harness import (
    DEFAULT_AMOUNT,
    STATUS_COMPLETED,
    STATUS_PAID,
    EscrowHarness,
    error_selector,
)

pytestmark = pytest.mark.integration

HONEST, FEE_ON_TRANSFER, BURN_GAS, REENTER = range(4)


@pytest.fixture
def hostile(fresh_chain: AnvilNode) -> EscrowHarness:
    return EscrowHarness(fresh_chain, erc20="HostileToken")


def _mode(escrow: EscrowHarness, mode: int) -> None:
    escrow.send(escrow.usdc.functions.setMode(mode), escrow.roles.stranger)


def _reenter_with(escrow: EscrowHarness, call: Any) -> None:
    """From now on every transfer first calls the escrow with ``call``."""
    reentry = call._encode_transaction_data()
    escrow.send(
        escrow.usdc.functions.setReentry(escrow.escrow.address, reentry), escrow.roles.stranger
    )
    _mode(escrow, REENTER)


def test_a_token_that_delivers_less_than_the_amount_is_refused(hostile: EscrowHarness):
    _mode(hostile, FEE_ON_TRANSFER)
    auth = hostile.booking_auth()
    hostile.expect_revert(
        "TransferAmountMismatch", hostile.fail_as(hostile.roles.customer, hostile.pay_call(auth))
    )
    assert hostile.booking(auth.booking_id)[0] == 0  # never recorded as paid


def test_a_relayed_payment_the_token_delivers_short_is_refused_too(hostile: EscrowHarness):
    customer = hostile.wallet_only_customer()
    _mode(hostile, FEE_ON_TRANSFER)
    auth = hostile.booking_auth(customer=customer.address)
    signed = hostile.sign_transfer(hostile.transfer_for(auth), customer.key.hex())
    hostile.expect_revert(
        "TransferAmountMismatch",
        hostile.fail_as(hostile.roles.other, hostile.relay_call(auth, signed)),
    )
    assert hostile.booking(auth.booking_id)[0] == 0

    _mode(hostile, HONEST)
    hostile.relay(auth, signed)
    assert hostile.balance(hostile.escrow.address) == DEFAULT_AMOUNT


def test_a_payout_that_runs_out_of_gas_reverts_instead_of_becoming_owed(hostile: EscrowHarness):
    booking_id = hostile.paid_booking()
    _mode(hostile, BURN_GAS)
    r = hostile.roles
    # An out-of-gas transfer must not be mistaken for a refused one (which would become "owed"):
    # a caller could otherwise starve a leg on purpose.
    call = hostile.complete_call(booking_id)
    hostile.expect_revert(
        "InsufficientGas", lambda: call.call({"from": r.customer.address, "gas": 2_000_000})
    )
    tx = call.transact({"from": r.customer.address, "gas": 2_000_000})
    assert hostile.w3.eth.wait_for_transaction_receipt(tx)["status"] == 0
    assert hostile.booking(booking_id)[0] == STATUS_PAID
    assert hostile.escrow.functions.totalOwed().call() == 0

    _mode(hostile, HONEST)
    hostile.complete(booking_id, r.customer)
    assert hostile.balance(r.provider.address) == 90 * 10**6


def _reentry_error(escrow: EscrowHarness) -> str:
    token = escrow.usdc.functions
    assert token.reentryAttempts().call() >= 1
    assert token.reentrySucceeded().call() is False
    return Web3.to_hex(token.reentryResult().call())[:10]


def test_a_token_reentering_during_payment_is_refused_by_the_guard(hostile: EscrowHarness):
    other = hostile.paid_booking()
    # During the next payment's transferFrom, the token tries to complete another booking.
    _reenter_with(hostile, hostile.complete_call(other))

    auth = hostile.booking_auth()
    hostile.pay(auth)

    guard = error_selector(hostile.escrow_artifact.abi, "ReentrancyGuardReentrantCall")
    assert _reentry_error(hostile) == guard
    assert hostile.booking(other)[0] == STATUS_PAID
    assert hostile.booking(auth.booking_id)[0] == STATUS_PAID
    assert hostile.balance(hostile.escrow.address) == 2 * DEFAULT_AMOUNT


def test_a_token_reentering_during_a_relayed_payment_is_refused_by_the_guard(
    hostile: EscrowHarness,
):
    other = hostile.paid_booking()
    _reenter_with(hostile, hostile.complete_call(other))
    customer = hostile.wallet_only_customer()
    auth = hostile.booking_auth(customer=customer.address)

    hostile.relay(auth, hostile.sign_transfer(hostile.transfer_for(auth), customer.key.hex()))

    guard = error_selector(hostile.escrow_artifact.abi, "ReentrancyGuardReentrantCall")
    assert _reentry_error(hostile) == guard
    assert hostile.booking(other)[0] == STATUS_PAID
    assert hostile.booking(auth.booking_id)[0] == STATUS_PAID


def test_a_token_reentering_during_a_payout_is_refused_by_the_guard(hostile: EscrowHarness):
    r = hostile.roles
    first = hostile.paid_booking()
    second = hostile.paid_booking()
    # While paying out the first booking, the token tries to cancel the second.
    cancel = hostile.cancel_auth(second)
    _reenter_with(hostile, hostile.cancel_call(cancel))

    hostile.complete(first, r.customer)

    guard = error_selector(hostile.escrow_artifact.abi, "ReentrancyGuardReentrantCall")
    assert _reentry_error(hostile) == guard
    assert hostile.booking(first)[0] == STATUS_COMPLETED
    assert hostile.booking(second)[0] == STATUS_PAID
    assert hostile.escrow.functions.nonceUsed(cancel.nonce).call() is False
    assert hostile.balance(r.provider.address) == 90 * 10**6
