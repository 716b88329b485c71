"""EIP-712 typed data of the BookingEscrow contract: validation, digests and signing.

The digests are computed here field by field (the same ``abi.encode`` the contract does) and
the signer key signs the 32-byte digest. eth-account's typed-data encoder is not used to sign
because it silently accepts lowercase or badly checksummed addresses and right-pads short
``bytes32`` values; every field is validated when an authorization is constructed instead.

Errors::

    ValueError
     └── TypedDataError          an authorization, domain or id refused before signing
          └── InvalidPrivateKeyError   the key is not a usable secp256k1 key (never echoed)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_utils.address import is_checksum_address
from eth_utils.crypto import keccak
from pydantic import SecretStr

from chain.reason_codes import MAX_ONCHAIN_REASON_BYTES

DOMAIN_NAME = "BookingEscrow"
DOMAIN_VERSION = "1"
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

_UINT256_MAX = 2**256 - 1
_BYTES32_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")
_PRIVATE_KEY_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")

DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
BOOKING_AUTHORIZATION_TYPE = (
    "BookingAuthorization(bytes32 bookingId,address customer,address provider,address inviter,"
    "uint256 amount,uint256 platformFeeRate,uint256 inviterFeeRate,uint256 releaseTime,"
    "uint256 expiry,uint256 nonce)"
)
CANCELLATION_AUTHORIZATION_TYPE = (
    "CancellationAuthorization(bytes32 bookingId,uint256 customerAmount,uint256 providerAmount,"
    "uint256 platformAmount,uint256 inviterAmount,string reason,uint256 expiry,uint256 nonce)"
)
DOMAIN_TYPEHASH = keccak(text=DOMAIN_TYPE)
BOOKING_AUTHORIZATION_TYPEHASH = keccak(text=BOOKING_AUTHORIZATION_TYPE)
CANCELLATION_AUTHORIZATION_TYPEHASH = keccak(text=CANCELLATION_AUTHORIZATION_TYPE)


class TypedDataError(ValueError):
    """Typed-data input refused before signing; the message names the field, never a key."""


class InvalidPrivateKeyError(TypedDataError):
    """The signing key is not a 32-byte secp256k1 private key (its value is never included)."""


def _check_address(field: str, value: object) -> None:
    if not isinstance(value, str) or not is_checksum_address(value):
        raise TypedDataError(f"{field} must be an EIP-55 checksummed address, got {value!r}")


def _check_bytes32(field: str, value: object) -> None:
    if not isinstance(value, str) or not _BYTES32_RE.fullmatch(value):
        raise TypedDataError(f"{field} must be 0x followed by exactly 64 hex digits, got {value!r}")


def _check_uint256(field: str, value: object) -> None:
    # bool is an int subclass; True as an amount is a bug, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _UINT256_MAX:
        raise TypedDataError(f"{field} must be an integer in [0, 2**256), got {value!r}")


@dataclass(frozen=True, kw_only=True)
class Eip712Domain:
    """The escrow's EIP-712 domain; chain id and contract address bind every signature."""

    chain_id: int
    verifying_contract: str
    name: str = DOMAIN_NAME
    version: str = DOMAIN_VERSION

    def __post_init__(self) -> None:
        _check_uint256("chain_id", self.chain_id)
        if self.chain_id == 0:
            raise TypedDataError("chain_id must be positive")
        _check_address("verifying_contract", self.verifying_contract)
        if not isinstance(self.name, str) or not isinstance(self.version, str):
            raise TypedDataError("domain name and version must be strings")

    def separator(self) -> bytes:
        """The domain separator, as the contract's ``_domainSeparatorV4()``."""
        return keccak(
            abi_encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [
                    DOMAIN_TYPEHASH,
                    keccak(text=self.name),
                    keccak(text=self.version),
                    self.chain_id,
                    self.verifying_contract,
                ],
            )
        )

    def as_typed_data(self) -> dict[str, Any]:
        """The domain as EIP-712 JSON (``eth_signTypedData_v4``)."""
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }


@dataclass(frozen=True, kw_only=True)
class BookingAuthorization:
    """The signer's permission for ``customer`` to pay booking ``booking_id`` into escrow."""

    booking_id: str
    customer: str
    provider: str
    inviter: str
    amount: int
    platform_fee_rate: int
    inviter_fee_rate: int
    release_time: int
    expiry: int
    nonce: int

    def __post_init__(self) -> None:
        _check_bytes32("booking_id", self.booking_id)
        for field in ("customer", "provider", "inviter"):
            _check_address(field, getattr(self, field))
        for field in (
            "amount",
            "platform_fee_rate",
            "inviter_fee_rate",
            "release_time",
            "expiry",
            "nonce",
        ):
            _check_uint256(field, getattr(self, field))

    def as_abi_tuple(self) -> tuple[bytes, str, str, str, int, int, int, int, int, int]:
        """The struct in ABI order, as ``createAndPayBooking``'s first argument."""
        return (
            bytes.fromhex(self.booking_id[2:]),
            self.customer,
            self.provider,
            self.inviter,
            self.amount,
            self.platform_fee_rate,
            self.inviter_fee_rate,
            self.release_time,
            self.expiry,
            self.nonce,
        )

    def as_message(self) -> dict[str, Any]:
        """The struct with its Solidity field names (EIP-712 message, API payloads)."""
        return {
            "bookingId": self.booking_id,
            "customer": self.customer,
            "provider": self.provider,
            "inviter": self.inviter,
            "amount": self.amount,
            "platformFeeRate": self.platform_fee_rate,
            "inviterFeeRate": self.inviter_fee_rate,
            "releaseTime": self.release_time,
            "expiry": self.expiry,
            "nonce": self.nonce,
        }

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> BookingAuthorization:
        """The inverse of ``as_message``; numbers as ints or decimal strings (the API's JSON)."""
        return cls(
            booking_id=message["bookingId"],
            customer=message["customer"],
            provider=message["provider"],
            inviter=message["inviter"],
            amount=int(message["amount"]),
            platform_fee_rate=int(message["platformFeeRate"]),
            inviter_fee_rate=int(message["inviterFeeRate"]),
            release_time=int(message["releaseTime"]),
            expiry=int(message["expiry"]),
            nonce=int(message["nonce"]),
        )

    def struct_hash(self) -> bytes:
        """``hashStruct(BookingAuthorization)``."""
        return keccak(
            abi_encode(
                [
                    "bytes32",
                    "bytes32",
                    "address",
                    "address",
                    "address",
                    "uint256",
                    "uint256",
                    "uint256",
                    "uint256",
                    "uint256",
                    "uint256",
                ],
                [BOOKING_AUTHORIZATION_TYPEHASH, *self.as_abi_tuple()],
            )
        )


@dataclass(frozen=True, kw_only=True)
class CancellationAuthorization:
    """The signer's split of a paid booking's escrow on cancellation; amounts sum to the total."""

    booking_id: str
    customer_amount: int
    provider_amount: int
    platform_amount: int
    inviter_amount: int
    reason: str
    expiry: int
    nonce: int

    def __post_init__(self) -> None:
        _check_bytes32("booking_id", self.booking_id)
        for field in (
            "customer_amount",
            "provider_amount",
            "platform_amount",
            "inviter_amount",
            "expiry",
            "nonce",
        ):
            _check_uint256(field, getattr(self, field))
        if not isinstance(self.reason, str):
            raise TypedDataError(f"reason must be a string, got {type(self.reason).__name__}")
        try:
            encoded = self.reason.encode("utf-8")
        except UnicodeEncodeError:
            raise TypedDataError("reason must be encodable as UTF-8") from None
        # The contract refuses a longer reason: it is a short code, never free text.
        if len(encoded) > MAX_ONCHAIN_REASON_BYTES:
            raise TypedDataError(
                f"reason is {len(encoded)} bytes; the contract takes at most "
                f"{MAX_ONCHAIN_REASON_BYTES} (a reason code, chain/reason_codes.py)"
            )

    @property
    def total(self) -> int:
        """What the split adds up to (must equal the booking's escrowed amount on chain)."""
        return (
            self.customer_amount + self.provider_amount + self.platform_amount + self.inviter_amount
        )

    def as_abi_tuple(self) -> tuple[bytes, int, int, int, int, str, int, int]:
        """The struct in ABI order, as ``cancelBooking``'s first argument."""
        return (
            bytes.fromhex(self.booking_id[2:]),
            self.customer_amount,
            self.provider_amount,
            self.platform_amount,
            self.inviter_amount,
            self.reason,
            self.expiry,
            self.nonce,
        )

    def as_message(self) -> dict[str, Any]:
        """The struct with its Solidity field names (EIP-712 message, API payloads)."""
        return {
            "bookingId": self.booking_id,
            "customerAmount": self.customer_amount,
            "providerAmount": self.provider_amount,
            "platformAmount": self.platform_amount,
            "inviterAmount": self.inviter_amount,
            "reason": self.reason,
            "expiry": self.expiry,
            "nonce": self.nonce,
        }

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> CancellationAuthorization:
        """The inverse of ``as_message``; numbers as ints or decimal strings (the API's JSON)."""
        return cls(
            booking_id=message["bookingId"],
            customer_amount=int(message["customerAmount"]),
            provider_amount=int(message["providerAmount"]),
            platform_amount=int(message["platformAmount"]),
            inviter_amount=int(message["inviterAmount"]),
            reason=message["reason"],
            expiry=int(message["expiry"]),
            nonce=int(message["nonce"]),
        )

    def struct_hash(self) -> bytes:
        """``hashStruct(CancellationAuthorization)``; the reason enters as its keccak256."""
        return keccak(
            abi_encode(
                [
                    "bytes32",
                    "bytes32",
                    "uint256",
                    "uint256",
                    "uint256",
                    "uint256",
                    "bytes32",
                    "uint256",
                    "uint256",
                ],
                [
                    CANCELLATION_AUTHORIZATION_TYPEHASH,
                    bytes.fromhex(self.booking_id[2:]),
                    self.customer_amount,
                    self.provider_amount,
                    self.platform_amount,
                    self.inviter_amount,
                    keccak(text=self.reason),
                    self.expiry,
                    self.nonce,
                ],
            )
        )


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
    digest = booking_authorization_digest(domain, auth)
    signature, signer = _sign_digest(digest, private_key)
    return SignedAuthorization(
        authorization=auth,
        domain=domain,
        digest="0x" + digest.hex(),
        signature="0x" + signature.hex(),
        signer=signer,
    )


def sign_cancellation_authorization(
    domain: Eip712Domain, auth: CancellationAuthorization, private_key: SecretStr | str | bytes
) -> SignedAuthorization[CancellationAuthorization]:
    """Sign a cancellation authorization with the signer key."""
    _check_types(domain, auth, CancellationAuthorization)
    digest = cancellation_authorization_digest(domain, auth)
    signature, signer = _sign_digest(digest, private_key)
    return SignedAuthorization(
        authorization=auth,
        domain=domain,
        digest="0x" + digest.hex(),
        signature="0x" + signature.hex(),
        signer=signer,
    )


def chain_booking_id(booking_uuid: uuid.UUID | str) -> str:
    """The on-chain booking id: 0x-hex of ``keccak256(utf8(str(booking_uuid)))``."""
    if isinstance(booking_uuid, str):
        try:
            # Canonical form (lowercase, hyphenated) so one booking never gets two ids.
            booking_uuid = uuid.UUID(booking_uuid)
        except ValueError:
            raise TypedDataError(f"not a UUID: {booking_uuid!r}") from None
    if not isinstance(booking_uuid, uuid.UUID):
        raise TypedDataError(f"booking id must be a UUID, got {type(booking_uuid).__name__}")
    return "0x" + keccak(text=str(booking_uuid)).hex()


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


__all__ = [
    "BOOKING_AUTHORIZATION_TYPEHASH",
    "CANCELLATION_AUTHORIZATION_TYPEHASH",
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "ZERO_ADDRESS",
    "BookingAuthorization",
    "CancellationAuthorization",
    "Eip712Domain",
    "InvalidPrivateKeyError",
    "SignedAuthorization",
    "TypedDataError",
    "booking_authorization_digest",
    "booking_typed_data",
    "cancellation_authorization_digest",
    "cancellation_typed_data",
    "chain_booking_id",
    "sign_booking_authorization",
    "sign_cancellation_authorization",
    "typed_data_digest",
]
