"""ERC-3009 transfer authorizations: USDC's published hashes and domains, eth-account as an
independent encoder, signature handling, the booking binding, and the relayer's simulation."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak
from pydantic import SecretStr

from chain.client import ChainClient
from chain.eip712 import (
    RECEIVE_WITH_AUTHORIZATION_TYPE,
    RECEIVE_WITH_AUTHORIZATION_TYPEHASH,
    BookingAuthorization,
    Eip712Domain,
    ReceiveWithAuthorization,
    TypedDataError,
)
from chain.escrow import EscrowReader, escrow_abi
from chain.signature_parts import recover_signer, split_signature
from chain.signing import InvalidPrivateKeyError, typed_data_digest
from chain.transfer_auth import (
    RELAYED_PAYMENT_FUNCTION,
    TransferAuthorization,
    TransferSignatureError,
    authorization_used,
    read_token_domain,
    receive_authorization,
    receive_digest,
    receive_typed_data,
    recover_payer,
    relayed_payment_calldata,
    relayed_payment_tx,
    sign_receive_authorization,
    simulate_relayed_payment,
    token_domain,
    transfer_authorization,
    transfer_nonce,
)
from tests.contracts.harness import EscrowHarness

# anvil's published dev accounts #2 and #3: test keys, never real ones.
PAYER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
PAYER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
OTHER_KEY = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"

ESCROW_DOMAIN = Eip712Domain(
    chain_id=31337, verifying_contract="0x5FbDB2315678afecb367f032d93F642f64180aa3"
)
TOKEN = token_domain(chain_id=31337, token="0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")
BOOKING = BookingAuthorization(
    booking_id="0xc6e102f542650deab752ef20e0513c1b878fba17329066e0424f99fd78749627",
    customer=PAYER,
    provider="0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    inviter="0x0000000000000000000000000000000000000000",
    amount=250_000_000,
    platform_fee_rate=1000,
    inviter_fee_rate=0,
    release_time=1_767_225_600,
    expiry=1_767_218_700,
    nonce=42,
)

# keccak256 of the type strings, as USDC (circlefin/stablecoin-evm, FiatTokenV2's EIP3009)
# declares them.
PUBLISHED_RECEIVE_TYPEHASH = "d099cc98ef71107a616c4f0f941f04c322d8e254fe26b3c6668db87aae413de8"
PUBLISHED_TRANSFER_TYPEHASH = "7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267"
PUBLISHED_CANCEL_TYPEHASH = "158b0a9edf7a828aad02f63cd515c68ef2f50ba807396f6d12842833a1597429"

# A TransferWithAuthorization that USDC on Base accepted (tx 0xd8a41fb865beba51d9e795f556dc3b77
# e6ce5bb20a0dceb2e0691aa791997531, block 52165064, as quoted in public code). Its signature
# recovering to `from` under our domain and digest is itself the proof that they are USDC's.
SETTLED_ON_BASE = {
    "from": "0x9d24D267Cf8D9A8b9Ed104b4856cDe8830C266eF",
    "to": "0xB73D8bC93B791510C4733C5c5AC2015A3c2930EC",
    "value": 22_000,
    "validAfter": 0,
    "validBefore": 1_791_120_073,
    "nonce": "0x84428e7eae7b08cac1ec9186e338e14fa5056d9f62bb9d92e1ea927370b8e779",
}
SETTLED_SIGNATURE = (
    "0xb909a9345301f4942d14fc97f72306b8ae6e4077431cb8e950194196101b3458"
    "2f9cf1604c72db4a5a87ade62949449a2eff957f1d58a11954438dac229aa16f1c"
)
BASE_USDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"


def _transfer(**overrides: object) -> ReceiveWithAuthorization:
    return replace(receive_authorization(ESCROW_DOMAIN, BOOKING), **overrides)  # type: ignore[arg-type]


# ------------------------------------------------------------------ USDC's published values


def test_the_type_hash_is_usdcs():
    assert RECEIVE_WITH_AUTHORIZATION_TYPE == (
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,"
        "uint256 validBefore,bytes32 nonce)"
    )
    assert RECEIVE_WITH_AUTHORIZATION_TYPEHASH.hex() == PUBLISHED_RECEIVE_TYPEHASH


@pytest.mark.parametrize(
    ("chain_id", "token", "name", "separator"),
    [
        # DOMAIN_SEPARATOR() of USDC on Ethereum, Base and Base Sepolia (whose name is "USDC").
        (
            1,
            "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
            "USD Coin",
            "06c37168a7db5138defc7866392bb87a741f9b3d104deb5094588ce041cae335",
        ),
        (
            8453,
            BASE_USDC,
            "USD Coin",
            "02fa7265e7c5d81118673727957699e4d68f74cd74b7db77da710fe8a2c7834f",
        ),
        (
            84532,
            "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            "USDC",
            "71f17a3b2ff373b803d70a5a07c046c1a2bc8e89c09ef722fcb047abe94c9818",
        ),
    ],
)
def test_the_domain_separator_is_the_one_usdc_publishes(
    chain_id: int, token: str, name: str, separator: str
):
    assert token_domain(chain_id=chain_id, token=token, name=name).separator().hex() == separator


def test_a_transfer_usdc_accepted_on_base_recovers_to_its_payer():
    base = token_domain(chain_id=8453, token=BASE_USDC)
    s = SETTLED_ON_BASE
    struct_hash = keccak(
        abi_encode(
            ["bytes32", "address", "address", "uint256", "uint256", "uint256", "bytes32"],
            [
                bytes.fromhex(PUBLISHED_TRANSFER_TYPEHASH),
                s["from"],
                s["to"],
                s["value"],
                s["validAfter"],
                s["validBefore"],
                bytes.fromhex(str(s["nonce"])[2:]),
            ],
        )
    )
    assert recover_signer(typed_data_digest(base, struct_hash), SETTLED_SIGNATURE) == s["from"]


# ------------------------------------------------------------------ eth-account, independently


def test_the_digest_is_eth_accounts_digest_of_the_typed_data_json():
    transfer = _transfer()
    typed = receive_typed_data(TOKEN, transfer)
    # What a wallet gets is plain JSON; what it signs must be our digest.
    signable = encode_typed_data(full_message=json.loads(json.dumps(typed)))
    eth_account_digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert eth_account_digest == receive_digest(TOKEN, transfer)
    assert typed["primaryType"] == "ReceiveWithAuthorization"
    assert typed["message"] == {
        "from": PAYER,
        "to": ESCROW_DOMAIN.verifying_contract,
        "value": BOOKING.amount,
        "validAfter": 0,
        "validBefore": BOOKING.expiry + 1,
        "nonce": transfer_nonce(ESCROW_DOMAIN, BOOKING),
    }
    assert typed["domain"] == {
        "name": "USD Coin",
        "version": "2",
        "chainId": 31337,
        "verifyingContract": TOKEN.verifying_contract,
    }


def test_a_signed_transfer_recovers_to_its_payer_and_splits_for_the_contract():
    transfer = _transfer()
    signed = sign_receive_authorization(TOKEN, transfer, PAYER_KEY)
    assert signed.digest == "0x" + receive_digest(TOKEN, transfer).hex()
    assert recover_payer(TOKEN, transfer, signed.signature) == PAYER

    parts = transfer_authorization(TOKEN, transfer, signed.signature)
    assert parts == signed.for_escrow()
    assert (parts.valid_after, parts.valid_before) == (0, BOOKING.expiry + 1)
    assert split_signature(signed.signature).as_bytes().hex() == signed.signature[2:]


def test_a_transfer_signed_by_anyone_but_the_payer_is_refused_before_any_gas():
    transfer = _transfer()
    theirs = sign_receive_authorization(TOKEN, transfer, OTHER_KEY).signature
    with pytest.raises(TransferSignatureError, match="not by the booking's customer"):
        transfer_authorization(TOKEN, transfer, theirs)
    # The payer's signature in another token's domain is refused the same way.
    elsewhere = token_domain(chain_id=8453, token=BASE_USDC)
    mine_elsewhere = sign_receive_authorization(elsewhere, transfer, PAYER_KEY).signature
    with pytest.raises(TransferSignatureError):
        transfer_authorization(TOKEN, transfer, mine_elsewhere)


def test_a_local_key_signs_as_a_secret_and_a_bad_one_is_never_echoed():
    transfer = _transfer()
    secret = sign_receive_authorization(TOKEN, transfer, SecretStr(PAYER_KEY))
    assert secret == sign_receive_authorization(TOKEN, transfer, PAYER_KEY)
    bad_key = "0x" + "00" * 32
    with pytest.raises(InvalidPrivateKeyError) as caught:
        sign_receive_authorization(TOKEN, transfer, bad_key)
    assert "00" * 8 not in str(caught.value)


# ------------------------------------------------------------------ signatures and inputs


def test_a_transfer_window_and_fields_are_validated():
    with pytest.raises(TypedDataError, match="valid_after"):
        _transfer(valid_after=BOOKING.expiry + 1)
    with pytest.raises(TypedDataError, match="payee"):
        _transfer(payee=ESCROW_DOMAIN.verifying_contract.lower())
    with pytest.raises(TypedDataError, match="nonce"):
        _transfer(nonce="0x1234")
    with pytest.raises(TypedDataError, match="value"):
        _transfer(value=-1)


def test_the_transfer_is_bound_to_the_booking_authorization():
    transfer = receive_authorization(ESCROW_DOMAIN, BOOKING, valid_after=5, valid_before=99)
    assert (transfer.payer, transfer.payee, transfer.value) == (
        BOOKING.customer,
        ESCROW_DOMAIN.verifying_contract,
        BOOKING.amount,
    )
    assert (transfer.valid_after, transfer.valid_before) == (5, 99)
    # Any change to the booking authorization (here its nonce) gives another transfer nonce.
    assert transfer_nonce(ESCROW_DOMAIN, replace(BOOKING, nonce=43)) != transfer.nonce
    other_escrow = replace(ESCROW_DOMAIN, verifying_contract=TOKEN.verifying_contract)
    assert transfer_nonce(other_escrow, BOOKING) != transfer.nonce


def test_the_calldata_carries_the_three_arguments_in_abi_order():
    parts = TransferAuthorization(
        valid_after=1, valid_before=2, v=27, r="0x" + "11" * 32, s="0x" + "22" * 32
    )
    data = relayed_payment_calldata(BOOKING, "0x" + "ab" * 65, parts)
    assert data[:4] == escrow_abi().encode_call(RELAYED_PAYMENT_FUNCTION, *_zero_args())[:4]
    auth, booking_sig, transfer = abi_decode(
        [
            "(bytes32,address,address,address,uint256,uint256,uint256,uint256,uint256,uint256)",
            "bytes",
            "(uint256,uint256,uint8,bytes32,bytes32)",
        ],
        data[4:],
    )
    assert auth[4:] == BOOKING.as_abi_tuple()[4:]
    assert booking_sig == b"\xab" * 65
    assert transfer == (1, 2, 27, b"\x11" * 32, b"\x22" * 32)
    tx = relayed_payment_tx(
        ESCROW_DOMAIN.verifying_contract, BOOKING, "0x" + "ab" * 65, parts, relayer=PAYER.lower()
    )
    assert tx == {"from": PAYER, "to": ESCROW_DOMAIN.verifying_contract, "data": data}


def _zero_args() -> tuple[object, ...]:
    return (BOOKING.as_abi_tuple(), b"", (0, 0, 0, b"\x00" * 32, b"\x00" * 32))


# ------------------------------------------------------------------ against the chain


@pytest.mark.integration
async def test_the_token_domain_is_read_from_the_chain(escrow: EscrowHarness, client: ChainClient):
    domain = await read_token_domain(client, escrow.usdc.address)
    assert domain == escrow.token_domain
    token = escrow.usdc.functions
    assert token.DOMAIN_SEPARATOR().call() == domain.separator()
    assert token.RECEIVE_WITH_AUTHORIZATION_TYPEHASH().call().hex() == PUBLISHED_RECEIVE_TYPEHASH
    assert token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH().call().hex() == PUBLISHED_TRANSFER_TYPEHASH
    assert token.CANCEL_AUTHORIZATION_TYPEHASH().call().hex() == PUBLISHED_CANCEL_TYPEHASH


@pytest.mark.integration
async def test_python_and_the_deployed_escrow_derive_the_same_transfer_nonce(
    escrow: EscrowHarness, client: ChainClient
):
    reader = EscrowReader(client, escrow.escrow.address)
    for auth in (escrow.booking_auth(), escrow.booking_auth(with_inviter=True, amount=1)):
        assert await reader.hash_booking_authorization(auth) == transfer_nonce(escrow.domain, auth)


@pytest.mark.integration
async def test_the_relayer_simulates_before_it_pays_gas(escrow: EscrowHarness, client: ChainClient):
    customer = escrow.wallet_only_customer()
    relayer = escrow.roles.other
    auth = escrow.booking_auth(customer=customer.address)
    transfer = escrow.transfer_for(auth)
    signed = sign_receive_authorization(escrow.token_domain, transfer, customer.key.hex())
    parts = transfer_authorization(escrow.token_domain, transfer, signed.signature)
    tx = relayed_payment_tx(
        escrow.escrow.address, auth, escrow.sign(auth), parts, relayer=relayer.address
    )

    ok = await simulate_relayed_payment(client, tx)
    assert ok.ok
    assert ok.gas is not None
    assert ok.gas > 21_000
    assert ok.reason == "ok"
    assert not await authorization_used(client, escrow.usdc.address, transfer)

    escrow.relay(auth, parts)
    assert await authorization_used(client, escrow.usdc.address, transfer)
    again = await simulate_relayed_payment(client, tx)
    assert (again.ok, again.error_name, again.reason) == (
        False,
        "BookingAlreadyExists",
        "BookingAlreadyExists",
    )

    # A revert inside the token comes back with USDC's own message.
    late = escrow.booking_auth(customer=customer.address)
    expired = escrow.transfer_for(late, valid_before=escrow.now())
    expired_sig = sign_receive_authorization(escrow.token_domain, expired, customer.key.hex())
    late_tx = relayed_payment_tx(
        escrow.escrow.address,
        late,
        escrow.sign(late),
        expired_sig.for_escrow(),
        relayer=relayer.address,
    )
    refused = await simulate_relayed_payment(client, late_tx)
    assert (refused.ok, refused.error_name) == (False, "Error")
    assert refused.reason == "FiatTokenV2: authorization is expired"


@pytest.mark.integration
async def test_signing_from_the_json_is_what_the_token_verifies(escrow: EscrowHarness):
    """The token's own digest equals eth-account's: a wallet-style signature of the JSON pays."""
    customer = escrow.wallet_only_customer()
    auth = escrow.booking_auth(customer=customer.address)
    transfer = escrow.transfer_for(auth)
    typed = json.loads(json.dumps(receive_typed_data(escrow.token_domain, transfer)))
    wallet_signature = Account.sign_typed_data(customer.key, full_message=typed).signature
    escrow.relay(auth, TransferAuthorization.from_signature(transfer, bytes(wallet_signature)))
    assert escrow.balance(escrow.escrow.address) == auth.amount
