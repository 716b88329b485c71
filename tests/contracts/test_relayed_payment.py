"""createAndPayBookingWithAuthorization: a customer with USDC and no ETH pays through a relayer
with one ERC-3009 signature bound to one booking authorization; every way it must refuse."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from web3.logs import DISCARD

from chain.eip712 import ReceiveWithAuthorization
from chain.transfer_auth import transfer_nonce
from tests.contracts.harness import (
    CUSTOMER_FUNDS,
    DEFAULT_AMOUNT,
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


def test_the_transfer_nonce_is_the_contracts_digest_of_the_booking_authorization(
    escrow: EscrowHarness,
):
    auth = escrow.booking_auth()
    on_chain = escrow.escrow.functions.hashBookingAuthorization(auth.as_abi_tuple()).call()
    assert transfer_nonce(escrow.domain, auth) == "0x" + on_chain.hex()
    assert escrow.transfer_for(auth).nonce == transfer_nonce(escrow.domain, auth)
