"""EIP-712 typed data of the BookingEscrow contract: the domain, the signed structs, booking ids;
and USDC's ERC-3009 ``ReceiveWithAuthorization``, which a relayed payment carries.

Each struct is a field table (Python attribute, Solidity name and type) from which its type
string, validation, ABI tuple, message and ``hashStruct`` all follow, the same ``abi.encode`` the
contract does. Every field is validated when a struct is constructed: eth-account's typed-data
encoder silently accepts lowercase or badly checksummed addresses and right-pads short
``bytes32`` values, so it is not trusted to. Digests and signatures: ``chain/signing.py``.

Errors::

    ValueError
     └── TypedDataError          an authorization, domain or id refused before signing
          └── InvalidPrivateKeyError   (chain/signing.py) the key is unusable (never echoed)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from eth_abi.abi import encode as abi_encode
from eth_utils.address import is_checksum_address
from eth_utils.crypto import keccak

from chain.reason_codes import MAX_ONCHAIN_REASON_BYTES

DOMAIN_NAME = "BookingEscrow"
DOMAIN_VERSION = "1"
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

_UINT256_MAX = 2**256 - 1
_BYTES32_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")

DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
DOMAIN_TYPEHASH = keccak(text=DOMAIN_TYPE)


class TypedDataError(ValueError):
    """Typed-data input refused before signing; the message names the field, never a key."""


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


@dataclass(frozen=True)
class _Field:
    """One member of a signed struct: its Python attribute, Solidity name and Solidity type."""

    attr: str
    name: str
    solidity: str  # bytes32 | address | uint256 | string


def _type_string(primary: str, fields: tuple[_Field, ...]) -> str:
    return f"{primary}({','.join(f'{f.solidity} {f.name}' for f in fields)})"


class _SignedStruct:
    """A struct the contract verifies, driven by its field table: validation, the ABI tuple,
    the EIP-712 message and its inverse, and ``hashStruct``, all in the table's order."""

    FIELDS: ClassVar[tuple[_Field, ...]]
    TYPEHASH: ClassVar[bytes]

    def _validate(self) -> None:
        for f in self.FIELDS:
            value = getattr(self, f.attr)
            if f.solidity == "bytes32":
                _check_bytes32(f.attr, value)
            elif f.solidity == "address":
                _check_address(f.attr, value)
            elif f.solidity == "uint256":
                _check_uint256(f.attr, value)
            elif not isinstance(value, str):
                raise TypedDataError(f"{f.attr} must be a string, got {type(value).__name__}")

    def as_abi_tuple(self) -> tuple[Any, ...]:
        """The struct in ABI order, as the contract function's first argument."""
        return tuple(_abi_value(f, getattr(self, f.attr)) for f in self.FIELDS)

    def as_message(self) -> dict[str, Any]:
        """The struct with its Solidity field names (EIP-712 message, API payloads)."""
        return {f.name: getattr(self, f.attr) for f in self.FIELDS}

    @classmethod
    def _from_message_values(cls, message: Mapping[str, Any]) -> dict[str, Any]:
        # Numbers as ints or decimal strings (the API's JSON).
        return {
            f.attr: int(message[f.name]) if f.solidity == "uint256" else message[f.name]
            for f in cls.FIELDS
        }

    def struct_hash(self) -> bytes:
        """``hashStruct``: a string member enters as its keccak256 (EIP-712)."""
        types = ["bytes32"] + [
            "bytes32" if f.solidity == "string" else f.solidity for f in self.FIELDS
        ]
        values: list[Any] = [self.TYPEHASH]
        for f in self.FIELDS:
            value = getattr(self, f.attr)
            values.append(keccak(text=value) if f.solidity == "string" else _abi_value(f, value))
        return keccak(abi_encode(types, values))


def _abi_value(f: _Field, value: Any) -> Any:
    return bytes.fromhex(value[2:]) if f.solidity == "bytes32" else value


BOOKING_AUTHORIZATION_FIELDS = (
    _Field("booking_id", "bookingId", "bytes32"),
    _Field("customer", "customer", "address"),
    _Field("provider", "provider", "address"),
    _Field("inviter", "inviter", "address"),
    _Field("amount", "amount", "uint256"),
    _Field("platform_fee_rate", "platformFeeRate", "uint256"),
    _Field("inviter_fee_rate", "inviterFeeRate", "uint256"),
    _Field("release_time", "releaseTime", "uint256"),
    _Field("expiry", "expiry", "uint256"),
    _Field("nonce", "nonce", "uint256"),
)
CANCELLATION_AUTHORIZATION_FIELDS = (
    _Field("booking_id", "bookingId", "bytes32"),
    _Field("customer_amount", "customerAmount", "uint256"),
    _Field("provider_amount", "providerAmount", "uint256"),
    _Field("platform_amount", "platformAmount", "uint256"),
    _Field("inviter_amount", "inviterAmount", "uint256"),
    _Field("reason", "reason", "string"),
    _Field("expiry", "expiry", "uint256"),
    _Field("nonce", "nonce", "uint256"),
)
BOOKING_AUTHORIZATION_TYPE = _type_string("BookingAuthorization", BOOKING_AUTHORIZATION_FIELDS)
CANCELLATION_AUTHORIZATION_TYPE = _type_string(
    "CancellationAuthorization", CANCELLATION_AUTHORIZATION_FIELDS
)
BOOKING_AUTHORIZATION_TYPEHASH = keccak(text=BOOKING_AUTHORIZATION_TYPE)
CANCELLATION_AUTHORIZATION_TYPEHASH = keccak(text=CANCELLATION_AUTHORIZATION_TYPE)


@dataclass(frozen=True, kw_only=True)
class BookingAuthorization(_SignedStruct):
    """The signer's permission for ``customer`` to pay booking ``booking_id`` into escrow."""

    FIELDS: ClassVar[tuple[_Field, ...]] = BOOKING_AUTHORIZATION_FIELDS
    TYPEHASH: ClassVar[bytes] = BOOKING_AUTHORIZATION_TYPEHASH

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
        self._validate()

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> BookingAuthorization:
        """The inverse of ``as_message``."""
        return cls(**cls._from_message_values(message))


@dataclass(frozen=True, kw_only=True)
class CancellationAuthorization(_SignedStruct):
    """The signer's split of a paid booking's escrow on cancellation; amounts sum to the total."""

    FIELDS: ClassVar[tuple[_Field, ...]] = CANCELLATION_AUTHORIZATION_FIELDS
    TYPEHASH: ClassVar[bytes] = CANCELLATION_AUTHORIZATION_TYPEHASH

    booking_id: str
    customer_amount: int
    provider_amount: int
    platform_amount: int
    inviter_amount: int
    reason: str
    expiry: int
    nonce: int

    def __post_init__(self) -> None:
        self._validate()
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

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> CancellationAuthorization:
        """The inverse of ``as_message``."""
        return cls(**cls._from_message_values(message))

    @property
    def total(self) -> int:
        """What the split adds up to (must equal the booking's escrowed amount on chain)."""
        return (
            self.customer_amount + self.provider_amount + self.platform_amount + self.inviter_amount
        )


RECEIVE_WITH_AUTHORIZATION_FIELDS = (
    _Field("payer", "from", "address"),
    _Field("payee", "to", "address"),
    _Field("value", "value", "uint256"),
    _Field("valid_after", "validAfter", "uint256"),
    _Field("valid_before", "validBefore", "uint256"),
    _Field("nonce", "nonce", "bytes32"),
)
RECEIVE_WITH_AUTHORIZATION_TYPE = _type_string(
    "ReceiveWithAuthorization", RECEIVE_WITH_AUTHORIZATION_FIELDS
)
RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak(text=RECEIVE_WITH_AUTHORIZATION_TYPE)


@dataclass(frozen=True, kw_only=True)
class ReceiveWithAuthorization(_SignedStruct):
    """USDC's ERC-3009 ``ReceiveWithAuthorization``: ``payer`` lets ``payee`` (only) take
    ``value`` between ``valid_after`` and ``valid_before`` (exclusive, unix seconds), once per
    ``nonce``. Signed by the payer in the token's domain (chain/transfer_auth.py)."""

    FIELDS: ClassVar[tuple[_Field, ...]] = RECEIVE_WITH_AUTHORIZATION_FIELDS
    TYPEHASH: ClassVar[bytes] = RECEIVE_WITH_AUTHORIZATION_TYPEHASH

    payer: str
    payee: str
    value: int
    valid_after: int
    valid_before: int
    nonce: str

    def __post_init__(self) -> None:
        self._validate()
        if self.valid_after >= self.valid_before:
            raise TypedDataError(
                f"valid_after ({self.valid_after}) must be before valid_before "
                f"({self.valid_before}): the token accepts only after < now < before"
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


__all__ = [
    "BOOKING_AUTHORIZATION_TYPEHASH",
    "CANCELLATION_AUTHORIZATION_TYPEHASH",
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "RECEIVE_WITH_AUTHORIZATION_TYPEHASH",
    "ZERO_ADDRESS",
    "BookingAuthorization",
    "CancellationAuthorization",
    "Eip712Domain",
    "ReceiveWithAuthorization",
    "TypedDataError",
    "chain_booking_id",
]
