"""Conversions between JSON-RPC hex strings and Python values, in one canonical form."""

from __future__ import annotations

from functools import lru_cache

from eth_utils.address import to_checksum_address

# Checksumming is a keccak per address and dominated log decoding; the same few addresses
# (the escrow, repeat customers and providers) recur, so cache by lowercase form.
_checksum = lru_cache(maxsize=65_536)(to_checksum_address)


def to_int(value: object) -> int:
    """A JSON-RPC quantity ("0x1a", or already an int) as an int."""
    if isinstance(value, bool):
        raise TypeError("a bool is not a quantity")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value, 16) if value[:2].lower() == "0x" else int(value)
    raise TypeError(f"not a quantity: {type(value).__name__}")


def to_quantity(value: int) -> str:
    """An int as a JSON-RPC quantity (no leading zeros)."""
    if value < 0:
        raise ValueError("quantities are non-negative")
    return hex(value)


def to_bytes(value: object) -> bytes:
    """0x-hex data (or bytes) as bytes."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        text = value[2:] if value[:2].lower() == "0x" else value
        return bytes.fromhex(text)
    raise TypeError(f"not hex data: {type(value).__name__}")


def to_hex(value: bytes) -> str:
    """Bytes as lowercase 0x-hex."""
    return "0x" + value.hex()


def hash32(value: object) -> str:
    """A 32-byte hash (tx hash, block hash, bytes32) as lowercase 0x-hex, length checked."""
    raw = to_bytes(value)
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return to_hex(raw)


def address(value: object) -> str:
    """An address (hex string or 20 bytes) in checksummed form."""
    if isinstance(value, bytes | bytearray):
        if len(value) != 20:
            raise ValueError(f"expected 20 address bytes, got {len(value)}")
        return _checksum("0x" + value.hex())
    if isinstance(value, str):
        return _checksum(value.lower())
    raise TypeError(f"not an address: {type(value).__name__}")


def block_id(value: int | str) -> str:
    """A block number or tag ("latest", "pending", "safe", "finalized", "earliest")."""
    if isinstance(value, int):
        return to_quantity(value)
    if value in {"latest", "pending", "safe", "finalized", "earliest"}:
        return value
    if value[:2].lower() == "0x":
        return value
    raise ValueError(f"not a block number or tag: {value!r}")
