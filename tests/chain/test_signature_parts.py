"""65-byte signatures for Solidity: split, normalised, refused when USDC would refuse them."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils.crypto import keccak

from chain.signature_parts import SignatureError, recover_signer, split_signature

# anvil's published dev account #2: a test key, never a real one.
KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
ADDRESS = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
DIGEST = keccak(text="a digest")
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _signature() -> bytes:
    return bytes(Account.unsafe_sign_hash(DIGEST, KEY).signature)


def test_a_signature_splits_into_v_r_s_and_back():
    signature = _signature()
    parts = split_signature("0x" + signature.hex())
    assert parts.v in (27, 28)
    assert (parts.r, parts.s) == ("0x" + signature[:32].hex(), "0x" + signature[32:64].hex())
    assert parts.as_bytes() == signature
    assert recover_signer(DIGEST, signature) == ADDRESS


def test_v_as_0_or_1_becomes_27_or_28():
    signature = _signature()
    as_zero_one = signature[:64] + bytes([signature[64] - 27])
    assert split_signature(as_zero_one) == split_signature(signature)
    assert recover_signer(DIGEST, as_zero_one) == ADDRESS


def test_malformed_and_malleable_signatures_are_refused():
    signature = _signature()
    # The same signature's twin (n - s, the other v) recovers too, but USDC refuses it.
    high_s = (SECP256K1_N - int.from_bytes(signature[32:64], "big")).to_bytes(32, "big")
    for bad, reason in (
        (signature[:64], "65 bytes"),
        (signature + b"\x00", "65 bytes"),
        (signature[:64] + b"\x1d", "v must be 27 or 28"),
        (signature[:32] + high_s + bytes([55 - signature[64]]), "lower half"),
        (signature[:32] + b"\x00" * 32 + signature[64:], "lower half"),
        ("0xnothex", "0x-hex"),
    ):
        with pytest.raises(SignatureError, match=reason):
            split_signature(bad)
