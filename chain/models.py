"""Typed views of the JSON-RPC objects the rest of the code reads (blocks, receipts, fees)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chain.hexutil import address, hash32, to_int


@dataclass(frozen=True, kw_only=True, slots=True)
class BlockHeader:
    """The fields of a block the listener and sender need."""

    number: int
    hash: str
    parent_hash: str
    timestamp: int
    base_fee_per_gas: int | None

    @classmethod
    def from_rpc(cls, raw: dict[str, Any]) -> BlockHeader:
        base_fee = raw.get("baseFeePerGas")
        return cls(
            number=to_int(raw["number"]),
            hash=hash32(raw["hash"]),
            parent_hash=hash32(raw["parentHash"]),
            timestamp=to_int(raw["timestamp"]),
            base_fee_per_gas=to_int(base_fee) if base_fee is not None else None,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class TransactionReceipt:
    """A mined transaction's outcome; ``logs`` stay raw so `chain.events.decode_log` reads them."""

    tx_hash: str
    block_number: int
    block_hash: str
    succeeded: bool
    gas_used: int
    effective_gas_price: int
    contract_address: str | None
    logs: tuple[dict[str, Any], ...]

    @classmethod
    def from_rpc(cls, raw: dict[str, Any]) -> TransactionReceipt:
        created = raw.get("contractAddress")
        price = raw.get("effectiveGasPrice")
        return cls(
            tx_hash=hash32(raw["transactionHash"]),
            block_number=to_int(raw["blockNumber"]),
            block_hash=hash32(raw["blockHash"]),
            succeeded=to_int(raw["status"]) == 1,
            gas_used=to_int(raw["gasUsed"]),
            effective_gas_price=to_int(price) if price is not None else 0,
            contract_address=address(created) if created else None,
            logs=tuple(raw.get("logs") or ()),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class FeeHistory:
    """eth_feeHistory: base fees include the next block's; rewards per requested percentile."""

    oldest_block: int
    base_fee_per_gas: tuple[int, ...]
    gas_used_ratio: tuple[float, ...]
    reward: tuple[tuple[int, ...], ...]

    @classmethod
    def from_rpc(cls, raw: dict[str, Any]) -> FeeHistory:
        return cls(
            oldest_block=to_int(raw["oldestBlock"]),
            base_fee_per_gas=tuple(to_int(v) for v in raw.get("baseFeePerGas") or ()),
            gas_used_ratio=tuple(float(v) for v in raw.get("gasUsedRatio") or ()),
            reward=tuple(tuple(to_int(v) for v in row) for row in raw.get("reward") or ()),
        )

    @property
    def next_base_fee(self) -> int:
        """The base fee of the block after the newest one (the last entry)."""
        return self.base_fee_per_gas[-1] if self.base_fee_per_gas else 0
