"""The typed ``eth_*`` calls this service makes, over a failover pool of providers.

`ChainClient` adds typed methods (blocks, logs, receipts, calls, fees, subscriptions) to
`chain.failover.ProviderPool`, which owns retry, failover, cool-downs and the RPC metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from chain.errors import AllProvidersFailed, ProviderError
from chain.failover import ProviderPool
from chain.hexutil import address, block_id, hash32, to_bytes, to_hex, to_int, to_quantity
from chain.models import BlockHeader, FeeHistory, TransactionReceipt
from chain.rpc import Subscription, WebSocketTransport


class ChainClient(ProviderPool):
    """JSON-RPC over ordered providers; `current_provider` tells which one serves."""

    @classmethod
    def from_settings(
        cls, settings: Any, *, registry: CollectorRegistry | None = None, **overrides: Any
    ) -> ChainClient:
        """A client configured from `bookme.settings.Settings` (rpc_urls, chain_id, timeouts)."""
        options: dict[str, Any] = {
            "registry": registry,
            "expected_chain_id": settings.chain_id,
            "timeout": settings.rpc_timeout_seconds,
            "head_stale_after_seconds": settings.head_stale_after_seconds,
        }
        options.update(overrides)
        return cls(list(settings.rpc_urls), **options)

    async def __aenter__(self) -> ChainClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- typed methods ---

    async def chain_id(self) -> int:
        """eth_chainId."""
        return to_int(await self.request("eth_chainId"))

    async def block_number(self) -> int:
        """eth_blockNumber of the serving provider."""
        return to_int(await self.request("eth_blockNumber"))

    async def get_block(self, number_or_tag: int | str = "latest") -> BlockHeader | None:
        """A block header by number or tag; None if the provider does not have it."""
        raw = await self.request("eth_getBlockByNumber", [block_id(number_or_tag), False])
        return BlockHeader.from_rpc(raw) if raw else None

    async def get_block_by_hash(self, block_hash: str) -> BlockHeader | None:
        """A block header by hash; None if unknown (e.g. reorged away)."""
        raw = await self.request("eth_getBlockByHash", [hash32(block_hash), False])
        return BlockHeader.from_rpc(raw) if raw else None

    async def get_logs(
        self,
        *,
        from_block: int | str,
        to_block: int | str,
        address: str | Sequence[str] | None = None,
        topics: Sequence[str | Sequence[str] | None] | None = None,
        call_timeout: float | None = None,
    ) -> list[dict[str, Any]]:
        """eth_getLogs; raw log dicts (decode with `chain.events.decode_log`)."""
        query: dict[str, Any] = {"fromBlock": block_id(from_block), "toBlock": block_id(to_block)}
        if address is not None:
            query["address"] = address if isinstance(address, str) else list(address)
        if topics is not None:
            query["topics"] = [t if t is None or isinstance(t, str) else list(t) for t in topics]
        result = await self.request("eth_getLogs", [query], call_timeout=call_timeout)
        return list(result)

    async def get_transaction_receipt(self, tx_hash: str) -> TransactionReceipt | None:
        """The receipt, or None while the transaction is not mined."""
        raw = await self.request("eth_getTransactionReceipt", [hash32(tx_hash)])
        return TransactionReceipt.from_rpc(raw) if raw else None

    async def get_transaction(self, tx_hash: str) -> dict[str, Any] | None:
        """The raw transaction object, or None if the node does not know it."""
        result = await self.request("eth_getTransactionByHash", [hash32(tx_hash)])
        return dict(result) if result else None

    async def call(self, tx: Mapping[str, Any], block: int | str = "latest") -> bytes:
        """eth_call; raises ExecutionReverted with the revert data on revert."""
        return to_bytes(await self.request("eth_call", [tx_params(tx), block_id(block)]))

    async def estimate_gas(self, tx: Mapping[str, Any], block: int | str | None = None) -> int:
        """eth_estimateGas; raises ExecutionReverted when the call would revert."""
        params: list[Any] = [tx_params(tx)]
        if block is not None:
            params.append(block_id(block))
        return to_int(await self.request("eth_estimateGas", params))

    async def send_raw_transaction(self, raw_tx: bytes) -> str:
        """eth_sendRawTransaction; the transaction hash as lowercase hex."""
        return hash32(await self.request("eth_sendRawTransaction", [to_hex(raw_tx)]))

    async def get_transaction_count(self, account: str, block: int | str = "pending") -> int:
        """The account's nonce at a block ("pending" includes the mempool)."""
        return to_int(
            await self.request("eth_getTransactionCount", [address(account), block_id(block)])
        )

    async def get_balance(self, account: str, block: int | str = "latest") -> int:
        """Native balance in wei."""
        return to_int(await self.request("eth_getBalance", [address(account), block_id(block)]))

    async def get_code(self, account: str, block: int | str = "latest") -> bytes:
        """Deployed bytecode (empty for an externally owned account)."""
        return to_bytes(await self.request("eth_getCode", [address(account), block_id(block)]))

    async def fee_history(
        self,
        block_count: int,
        newest_block: int | str = "latest",
        percentiles: Sequence[float] = (),
    ) -> FeeHistory:
        """eth_feeHistory over the last ``block_count`` blocks."""
        raw = await self.request(
            "eth_feeHistory", [to_quantity(block_count), block_id(newest_block), list(percentiles)]
        )
        return FeeHistory.from_rpc(raw)

    async def max_priority_fee(self) -> int:
        """eth_maxPriorityFeePerGas (the node's tip suggestion)."""
        return to_int(await self.request("eth_maxPriorityFeePerGas"))

    async def subscribe(self, kind: str, *params: Any) -> Subscription:
        """eth_subscribe on the first usable WebSocket provider (newHeads, logs...)."""
        last_error: ProviderError | None = None
        tried: set[int] = set()
        while (provider := self._choose(tried)) is not None:
            tried.add(provider.index)
            if not isinstance(provider.transport, WebSocketTransport):
                continue
            try:
                await self._check_chain(provider, self._timeout)
                subscription = await provider.transport.subscribe(
                    kind, *params, limit=self._timeout
                )
            except ProviderError as exc:
                last_error = exc
                self._mark_failed(provider, exc, "eth_subscribe")
                continue
            return subscription
        raise AllProvidersFailed("eth_subscribe", len(tried), last_error)


def tx_params(tx: Mapping[str, Any]) -> dict[str, Any]:
    """A call/transaction dict with Python values (bytes, ints) in JSON-RPC form."""
    out: dict[str, Any] = {}
    for key, value in tx.items():
        if value is None:
            continue
        if key in ("from", "to"):
            out[key] = address(value)
        elif key in ("data", "input"):
            out[key] = to_hex(bytes(value)) if isinstance(value, bytes | bytearray) else value
        elif isinstance(value, int):
            out[key] = to_quantity(value)
        else:
            out[key] = value
    return out
