"""A 65-byte secp256k1 signature (r || s || v) as Solidity takes it: split into v, r, s and
checked the way USDC and OpenZeppelin's ECDSA check it, and the address it recovers to.

Errors::

    ValueError
     └── TypedDataError (chain/eip712.py)
          └── SignatureError     not 65 bytes, v not 27/28 (or 0/1), s in the upper half,
                                 or recovering to no address
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_keys.datatypes import Signature
from eth_keys.exceptions import BadSignature

from chain.eip712 import TypedDataError
from chain.hexutil import address, to_bytes, to_hex

# secp256k1 group order; USDC (and OpenZeppelin's ECDSA) refuse s in the upper half.
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class SignatureError(TypedDataError):
    """A signature refused before any gas is spent (a 4xx at the API)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SignatureParts:
    """A 65-byte secp256k1 signature split for Solidity: v (27 or 28), r and s as 0x-hex."""

    v: int
    r: str
    s: str

    def as_bytes(self) -> bytes:
        """r || s || v, the 65-byte form."""
        return to_bytes(self.r) + to_bytes(self.s) + bytes([self.v])


def split_signature(signature: str | bytes) -> SignatureParts:
    """A 65-byte r || s || v signature as v, r, s; v 0/1 (some wallets) becomes 27/28."""
    try:
        raw = to_bytes(signature)
    except (TypeError, ValueError):
        raise SignatureError("signature must be 0x-hex or bytes") from None
    if len(raw) != 65:
        raise SignatureError(f"signature must be 65 bytes (r, s, v), got {len(raw)}")
    v = raw[64] + 27 if raw[64] in (0, 1) else raw[64]
    if v not in (27, 28):
        raise SignatureError(f"signature v must be 27 or 28 (or 0/1), got {raw[64]}")
    s = int.from_bytes(raw[32:64], "big")
    if not 0 < s <= _SECP256K1_N // 2:
        raise SignatureError("signature s is not in the lower half (malleable form)")
    return SignatureParts(v=v, r=to_hex(raw[:32]), s=to_hex(raw[32:64]))


def recover_signer(digest: bytes, signature: str | bytes) -> str:
    """The checksummed address whose key signed the 32-byte ``digest``."""
    parts = split_signature(signature)
    vrs = (parts.v - 27, int(parts.r, 16), int(parts.s, 16))
    try:
        public_key = Signature(vrs=vrs).recover_public_key_from_msg_hash(digest)
    except BadSignature:
        raise SignatureError("signature does not recover to any address") from None
    return address(public_key.to_checksum_address())


__all__ = ["SignatureError", "SignatureParts", "recover_signer", "split_signature"]
