"""EIP-712 signing: a pinned test vector, byte-equality with the contract, and input validation."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak
from pydantic import SecretStr

from chain.eip712 import (
    ZERO_ADDRESS,
    BookingAuthorization,
    CancellationAuthorization,
    Eip712Domain,
    TypedDataError,
    chain_booking_id,
)
from chain.errors import InvalidReason
from chain.reason_codes import MAX_ONCHAIN_REASON_BYTES, OnChainReason, onchain_reason
from chain.signing import (
    InvalidPrivateKeyError,
    booking_authorization_digest,
    booking_typed_data,
    cancellation_authorization_digest,
    cancellation_typed_data,
    sign_booking_authorization,
    sign_cancellation_authorization,
)
from tests.contracts.harness import EscrowHarness

# anvil's published dev account #1: a test key, never a real one.
SIGNER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
SIGNER_ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"

BOOKING_UUID = "9a0f6c9e-7d55-4d36-9a51-0c3f3f0f7b11"
BOOKING_ID = "0xc6e102f542650deab752ef20e0513c1b878fba17329066e0424f99fd78749627"

DOMAIN = Eip712Domain(
    chain_id=31337, verifying_contract="0x5FbDB2315678afecb367f032d93F642f64180aa3"
)
BOOKING = BookingAuthorization(
    booking_id=BOOKING_ID,
    customer="0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    provider="0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    inviter="0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    amount=250_000_000,
    platform_fee_rate=500,
    inviter_fee_rate=500,
    release_time=1_767_225_600,
    expiry=1_767_218_700,
    nonce=42,
)
CANCELLATION = CancellationAuthorization(
    booking_id=BOOKING_ID,
    customer_amount=125_000_000,
    provider_amount=100_000_000,
    platform_amount=15_000_000,
    inviter_amount=10_000_000,
    reason="late_cancellation",
    expiry=1_767_218_700,
    nonce=43,
)


def test_chain_booking_id_is_keccak_of_the_uuid_string():
    assert chain_booking_id(BOOKING_UUID) == BOOKING_ID
    assert chain_booking_id(uuid.UUID(BOOKING_UUID)) == BOOKING_ID
    assert chain_booking_id(BOOKING_UUID.upper()) == BOOKING_ID  # canonical form only
    assert "0x" + keccak(text=BOOKING_UUID).hex() == BOOKING_ID


def test_chain_booking_id_refuses_non_uuids():
    with pytest.raises(TypedDataError):
        chain_booking_id("booking-42")


def test_booking_authorization_vector():
    signed = sign_booking_authorization(DOMAIN, BOOKING, SIGNER_KEY)
    assert signed.digest == "0x6df9e02175147315fe8c61fc414c61c9b88def021f3456862941d56d99c6b7e3"
    assert signed.signature == (
        "0x6867bb9d630685ab31035e184a26d2690cf1d09d136b9bb6b12562f3c8621736"
        "27a59cb6e4cc80c626b6f7ed2625c225aee14ec121f0b2d3b1565d4c2c391b7f1c"
    )
    assert signed.signer == SIGNER_ADDRESS
    assert signed.authorization is BOOKING
    assert signed.domain is DOMAIN


def test_cancellation_authorization_vector():
    signed = sign_cancellation_authorization(DOMAIN, CANCELLATION, SecretStr(SIGNER_KEY))
    assert signed.digest == "0x5e30950d9efdfedb4d35edc0e5ae53b16aa9b5b17541c00c682799fdc2a6de9c"
    assert signed.signature == (
        "0xd82be6c4b61adf67f3a3b37bf984c89801526995ffea9ff50bee8982bb7a081c"
        "6c5437ec04201d77d7c2ff05aa6483cb269df82c7e426944362b9b3fee60563f1c"
    )
    assert signed.signer == SIGNER_ADDRESS


@pytest.mark.parametrize(
    ("auth", "typed_data"),
    [(BOOKING, booking_typed_data), (CANCELLATION, cancellation_typed_data)],
)
def test_digest_and_signature_equal_eth_accounts_typed_data_encoder(auth: Any, typed_data: Any):
    message = encode_typed_data(full_message=typed_data(DOMAIN, auth))
    reference = Account.sign_message(message, SIGNER_KEY)
    if isinstance(auth, BookingAuthorization):
        ours: Any = sign_booking_authorization(DOMAIN, auth, SIGNER_KEY)
    else:
        ours = sign_cancellation_authorization(DOMAIN, auth, SIGNER_KEY)
    assert ours.signature == "0x" + bytes(reference.signature).hex()
    assert ours.digest == "0x" + bytes(reference.message_hash).hex()


def test_signature_has_low_s_and_canonical_v():
    sig = bytes.fromhex(sign_booking_authorization(DOMAIN, BOOKING, SIGNER_KEY).signature[2:])
    half_n = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
    assert len(sig) == 65
    assert int.from_bytes(sig[32:64], "big") <= half_n
    assert sig[64] in (27, 28)


@pytest.mark.integration
def test_python_digests_equal_the_contracts(escrow: EscrowHarness):
    auth = escrow.booking_auth(with_inviter=True)
    on_chain = escrow.escrow.functions.hashBookingAuthorization(auth.as_abi_tuple()).call()
    assert bytes(on_chain) == booking_authorization_digest(escrow.domain, auth)

    cancel = replace(CANCELLATION, reason="ünïcode reason ✓")
    on_chain = escrow.escrow.functions.hashCancellationAuthorization(cancel.as_abi_tuple()).call()
    assert bytes(on_chain) == cancellation_authorization_digest(escrow.domain, cancel)


@pytest.mark.integration
def test_signed_in_python_verifies_on_anvil(escrow: EscrowHarness):
    r = escrow.roles
    auth = escrow.booking_auth(with_inviter=True)
    signed = sign_booking_authorization(escrow.domain, auth, r.signer.private_key)
    assert signed.signer == r.signer.address
    escrow.pay(auth, bytes.fromhex(signed.signature[2:]))

    cancel = escrow.cancel_auth(
        auth.booking_id,
        customer_amount=auth.amount - 3,
        provider_amount=1,
        platform_amount=1,
        inviter_amount=1,
        reason="customer_request",
    )
    signed_cancel = sign_cancellation_authorization(escrow.domain, cancel, r.signer.private_key)
    escrow.cancel(cancel, r.customer, bytes.fromhex(signed_cancel.signature[2:]))
    assert escrow.booking(auth.booking_id)[0] == 3  # Cancelled


# ------------------------------------------------------------------ validation


def _booking(**changes: Any) -> BookingAuthorization:
    fields = {**BOOKING.__dict__, **changes}
    return BookingAuthorization(**fields)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("customer", BOOKING.customer.lower()),
        ("provider", BOOKING.provider.upper().replace("0X", "0x")),
        # One letter's case flipped: a bad checksum.
        ("inviter", "0x15d34aAf54267DB7D7c367839AAf71A00a2C6A65"),
        ("customer", BOOKING.customer[:-2]),
        ("customer", BOOKING.customer[2:]),
        ("customer", bytes.fromhex(BOOKING.customer[2:])),
        ("inviter", None),
    ],
)
def test_addresses_must_be_checksummed(field: str, value: object):
    with pytest.raises(TypedDataError, match=field):
        _booking(**{field: value})


@pytest.mark.parametrize(
    "value",
    [
        BOOKING_ID[:-2],  # 31 bytes: eth-account would silently right-pad this
        BOOKING_ID + "00",
        BOOKING_ID[2:],
        "0x" + "zz" * 32,
        bytes.fromhex(BOOKING_ID[2:]),
        "",
    ],
)
def test_booking_id_must_be_exactly_32_bytes(value: object):
    with pytest.raises(TypedDataError, match="booking_id"):
        _booking(booking_id=value)
    with pytest.raises(TypedDataError, match="booking_id"):
        replace(CANCELLATION, booking_id=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", -1),
        ("amount", 2**256),
        ("amount", 1.5),
        ("amount", "100"),
        ("amount", True),
        ("nonce", -5),
        ("expiry", None),
        ("platform_fee_rate", 10.0),
    ],
)
def test_integers_must_be_uint256(field: str, value: object):
    with pytest.raises(TypedDataError, match=field):
        _booking(**{field: value})


def test_zero_inviter_is_valid():
    assert _booking(inviter=ZERO_ADDRESS).inviter == ZERO_ADDRESS


def test_cancellation_amounts_and_reason_are_validated():
    with pytest.raises(TypedDataError, match="customer_amount"):
        replace(CANCELLATION, customer_amount=-1)
    with pytest.raises(TypedDataError, match="reason"):
        replace(CANCELLATION, reason=None)  # type: ignore[arg-type]
    with pytest.raises(TypedDataError, match="reason"):
        replace(CANCELLATION, reason="\ud800")
    assert CANCELLATION.total == 250_000_000


def test_a_cancellation_reason_over_32_bytes_is_refused_as_the_contract_does():
    with pytest.raises(TypedDataError, match="33 bytes"):
        replace(CANCELLATION, reason="x" * 33)
    with pytest.raises(TypedDataError, match="33 bytes"):
        replace(CANCELLATION, reason="€" * 11)  # 11 characters, 33 UTF-8 bytes
    assert replace(CANCELLATION, reason="x" * 32).reason == "x" * 32


def test_every_reason_code_fits_on_chain():
    for code in OnChainReason:
        assert len(code.value.encode("utf-8")) <= MAX_ONCHAIN_REASON_BYTES
        assert onchain_reason(code.value) is code
    with pytest.raises(InvalidReason):
        onchain_reason("refund, customer phoned: +1 555 0100")


def test_domain_is_validated():
    with pytest.raises(TypedDataError, match="verifying_contract"):
        Eip712Domain(chain_id=1, verifying_contract=DOMAIN.verifying_contract.lower())
    with pytest.raises(TypedDataError, match="chain_id"):
        Eip712Domain(chain_id=0, verifying_contract=DOMAIN.verifying_contract)
    with pytest.raises(TypedDataError, match="chain_id"):
        Eip712Domain(chain_id=-1, verifying_contract=DOMAIN.verifying_contract)


def test_validation_errors_are_value_errors():
    assert issubclass(TypedDataError, ValueError)
    assert issubclass(InvalidPrivateKeyError, TypedDataError)


@pytest.mark.parametrize(
    "bad_key",
    [
        SIGNER_KEY[:-2],
        SIGNER_KEY + "ab",
        "0x" + "00" * 32,  # out of the curve's range
        "0x" + "ff" * 32,
        bytes(31),
        "not a key " + SIGNER_KEY[2:],
    ],
    ids=["short", "long", "zero", "above-n", "31-bytes", "garbage"],
)
def test_bad_keys_are_refused_without_echoing_them(bad_key: str | bytes):
    with pytest.raises(InvalidPrivateKeyError) as caught:
        sign_booking_authorization(DOMAIN, BOOKING, bad_key)
    text = str(caught.value) + repr(caught.value)
    key_hex = bad_key.hex() if isinstance(bad_key, bytes) else bad_key
    if key_hex.removeprefix("0x"):
        assert key_hex.removeprefix("0x")[:16] not in text
    # No chained exception (eth-keys' messages may quote the key) reaches a traceback.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_signed_authorization_repr_holds_no_key():
    signed = sign_booking_authorization(DOMAIN, BOOKING, SIGNER_KEY)
    assert SIGNER_KEY[2:] not in repr(signed)


def test_non_dataclass_inputs_are_refused():
    with pytest.raises(TypedDataError):
        sign_booking_authorization(DOMAIN, CANCELLATION, SIGNER_KEY)  # type: ignore[arg-type]
    with pytest.raises(TypedDataError):
        sign_cancellation_authorization(DOMAIN.__dict__, CANCELLATION, SIGNER_KEY)  # type: ignore[arg-type]
