"""Digests, signatures and EIP-712 JSON of the escrow's authorizations (types: chain/eip712.py).

The signer key signs the 32-byte digest the contract recovers from (``_hashTypedDataV4``);
a key never appears in an error message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from eth_account import Account
from eth_utils.crypto import keccak
from pydantic import SecretStr

from chain.eip712 import (
    BOOKING_AUTHORIZATION_TYPE,
    CANCELLATION_AUTHORIZATION_TYPE,
    DOMAIN_TYPE,
    BookingAuthorization,
    CancellationAuthorization,
    Eip712Domain,
    TypedDataError,
)

_PRIVATE_KEY_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


class InvalidPrivateKeyError(TypedDataError):
    """The signing key is not a 32-byte secp256k1 private key (its value is never included)."""


AuthorizationT = TypeVar("AuthorizationT", BookingAuthorization, CancellationAuthorization)


@dataclass(frozen=True, kw_only=True)
class SignedAuthorization(Generic[AuthorizationT]):
    """An authorization with the signer's signature over its digest in ``domain``."""

    authorization: AuthorizationT
    domain: Eip712Domain
    digest: str
    """0x-hex of the 32-byte EIP-712 digest that was signed."""
    signature: str
    """0x-hex of the 65-byte signature r || s || v (v is 27 or 28, s in the lower half)."""
    signer: str
    """Checksummed address of the key that signed."""


def typed_data_digest(domain: Eip712Domain, struct_hash: bytes) -> bytes:
    """``keccak256(0x1901 || domainSeparator || structHash)``, as ``_hashTypedDataV4``."""
    return keccak(b"\x19\x01" + domain.separator() + struct_hash)


def booking_authorization_digest(domain: Eip712Domain, auth: BookingAuthorization) -> bytes:
    """The digest the contract recovers the signer from in ``createAndPayBooking``."""
    return typed_data_digest(domain, auth.struct_hash())


def cancellation_authorization_digest(
    domain: Eip712Domain, auth: CancellationAuthorization
) -> bytes:
    """The digest the contract recovers the signer from in ``cancelBooking``."""
    return typed_data_digest(domain, auth.struct_hash())


def sign_booking_authorization(
    domain: Eip712Domain, auth: BookingAuthorization, private_key: SecretStr | str | bytes
) -> SignedAuthorization[BookingAuthorization]:
    """Sign a payment authorization with the signer key."""
    _check_types(domain, auth, BookingAuthorization)
    return _signed(domain, auth, private_key)


def sign_cancellation_authorization(
    domain: Eip712Domain, auth: CancellationAuthorization, private_key: SecretStr | str | bytes
) -> SignedAuthorization[CancellationAuthorization]:
    """Sign a cancellation authorization with the signer key."""
    _check_types(domain, auth, CancellationAuthorization)
    return _signed(domain, auth, private_key)


def _signed(
    domain: Eip712Domain, auth: AuthorizationT, private_key: SecretStr | str | bytes
) -> SignedAuthorization[AuthorizationT]:
    """Either struct, signed over ``typed_data_digest`` (its type was checked by the caller)."""
    digest = typed_data_digest(domain, auth.struct_hash())
    signature, signer = _sign_digest(digest, private_key)
    return SignedAuthorization(
        authorization=auth,
        domain=domain,
        digest="0x" + digest.hex(),
        signature="0x" + signature.hex(),
        signer=signer,
    )


def booking_typed_data(domain: Eip712Domain, auth: BookingAuthorization) -> dict[str, Any]:
    """Full EIP-712 JSON of a payment authorization (wallets, ``eth_signTypedData_v4``)."""
    return _typed_data(
        domain, "BookingAuthorization", BOOKING_AUTHORIZATION_TYPE, auth.as_message()
    )


def cancellation_typed_data(
    domain: Eip712Domain, auth: CancellationAuthorization
) -> dict[str, Any]:
    """Full EIP-712 JSON of a cancellation authorization."""
    return _typed_data(
        domain, "CancellationAuthorization", CANCELLATION_AUTHORIZATION_TYPE, auth.as_message()
    )


def _typed_data(
    domain: Eip712Domain, primary_type: str, type_string: str, message: dict[str, Any]
) -> dict[str, Any]:
    return {
        "types": {
            "EIP712Domain": _fields(DOMAIN_TYPE),
            primary_type: _fields(type_string),
        },
        "primaryType": primary_type,
        "domain": domain.as_typed_data(),
        "message": message,
    }


def _fields(type_string: str) -> list[dict[str, str]]:
    inner = type_string[type_string.index("(") + 1 : -1]
    fields = []
    for member in inner.split(","):
        solidity_type, name = member.split(" ")
        fields.append({"name": name, "type": solidity_type})
    return fields


def _check_types(domain: object, auth: object, expected: type) -> None:
    # Frozen dataclasses validate on construction; this guards against look-alike objects.
    if not isinstance(domain, Eip712Domain):
        raise TypedDataError(f"domain must be an Eip712Domain, got {type(domain).__name__}")
    if not isinstance(auth, expected):
        raise TypedDataError(f"expected a {expected.__name__}, got {type(auth).__name__}")


def _key_bytes(private_key: SecretStr | str | bytes) -> bytes:
    if isinstance(private_key, SecretStr):
        private_key = private_key.get_secret_value()
    if isinstance(private_key, bytes):
        if len(private_key) != 32:
            raise InvalidPrivateKeyError("private key must be exactly 32 bytes")
        return private_key
    if isinstance(private_key, str) and _PRIVATE_KEY_RE.fullmatch(private_key.strip()):
        return bytes.fromhex(private_key.strip().removeprefix("0x"))
    raise InvalidPrivateKeyError("private key must be 32 bytes or 64 hex digits (0x optional)")


def _sign_digest(digest: bytes, private_key: SecretStr | str | bytes) -> tuple[bytes, str]:
    key = _key_bytes(private_key)
    try:
        account = Account.from_key(key)
        signed = account.unsafe_sign_hash(digest)
    except Exception:
        # eth-keys messages may quote the key; replace them with one that cannot.
        raise InvalidPrivateKeyError("private key is not a valid secp256k1 key") from None
    return bytes(signed.signature), str(account.address)
