"""Sending transactions from one key: nonces, gas, EIP-1559 fees, confirmations, replacement.

Generic: the deployer, the owner and admin commands and the escrow operator
(``chain/operator.py``) all send through it. Fees are in ``chain/fees.py``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from chain.basis_points import bps_of
from chain.client import ChainClient
from chain.errors import (
    AllProvidersFailed,
    FeeCapExceeded,
    ProviderError,
    RpcError,
    TransactionDropped,
    TransactionError,
)
from chain.fees import FeeQuote, quote_within_cap, replacement_within_cap
from chain.hexutil import address
from chain.keys import TransactionKey
from chain.ledger import SentTransaction, TxDraft, TxLedger, TxOutcome
from chain.metrics import TxMetrics
from chain.models import TransactionReceipt
from chain.sender_config import SenderConfig

log = structlog.get_logger(__name__)

__all__ = ["SenderConfig", "SentTransaction", "TransactionSender"]


def _already_known(exc: RpcError) -> bool:
    message = exc.rpc_message.lower()
    return "already known" in message or "known transaction" in message


class TransactionSender:
    """Signs and sends transactions from one key; safe to share between concurrent tasks."""

    def __init__(
        self,
        client: ChainClient,
        key: TransactionKey,
        *,
        chain_id: int,
        config: SenderConfig | None = None,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
        ledger: TxLedger | None = None,
    ) -> None:
        self.client = client
        # None: nonces from an in-process counter, for a key only this process uses.
        self._ledger = ledger
        self._metrics = TxMetrics(registry if registry is not None else CollectorRegistry())
        self._key = key
        self.chain_id = chain_id
        self.config = config or SenderConfig()
        self._clock = clock
        self._nonce_lock = asyncio.Lock()
        self._next_nonce: int | None = None
        self._head: int | None = None
        self._head_at = 0.0
        self._head_lookup: asyncio.Future[int] | None = None

    @property
    def address(self) -> str:
        return self._key.address

    def __repr__(self) -> str:
        return f"TransactionSender(address={self.address!r}, chain_id={self.chain_id})"

    # --- fees and gas ---

    async def estimate_fees(self) -> FeeQuote:
        """maxFee = 2 x next base fee + tip; tip = median of recent blocks' percentile rewards."""
        config = self.config
        try:
            history = await self.client.fee_history(
                config.fee_history_blocks, "latest", [config.priority_fee_percentile]
            )
            base_fee = history.next_base_fee
            rewards = [row[0] for row in history.reward if row]
            tip = int(statistics.median(rewards)) if rewards else 0
        except RpcError:
            # Not every provider serves eth_feeHistory; fall back to the head and the node's tip.
            head = await self.client.get_block("latest")
            base_fee = (head.base_fee_per_gas or 0) if head else 0
            tip = await self.client.max_priority_fee()
        tip = max(tip, config.min_priority_fee_wei)
        try:
            return quote_within_cap(base_fee=base_fee, tip=tip, cap=config.max_fee_per_gas_cap)
        except FeeCapExceeded:
            self._metrics.fee_cap_refusals.labels(self.address).inc()
            raise

    async def estimate_gas(self, *, to: str | None, data: bytes, value: int = 0) -> int:
        """Gas estimate with headroom; raises ExecutionReverted if the call would revert."""
        tx: dict[str, Any] = {"from": self.address, "data": data, "value": value}
        if to is not None:
            tx["to"] = to
        estimate = await self.client.estimate_gas(tx, self.config.estimate_block)
        return estimate + bps_of(estimate, self.config.gas_headroom_bps)

    # --- broadcasting ---

    def _sign(self, sent: SentTransaction) -> tuple[bytes, str]:
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": sent.nonce,
            "gas": sent.gas,
            "maxFeePerGas": sent.fees.max_fee_per_gas,
            "maxPriorityFeePerGas": sent.fees.max_priority_fee_per_gas,
            "value": sent.value,
            "data": sent.data,
        }
        if sent.to is not None:
            tx["to"] = sent.to
        return self._key.sign_transaction(tx)

    async def _submit(self, raw: bytes, tx_hash: str) -> None:
        try:
            await self.client.send_raw_transaction(raw)
        except RpcError as exc:
            # A retry after a lost answer (or a failover) resends the same bytes: the node
            # already has them, which is success. Any other refusal: is our hash known anyway?
            if _already_known(exc) or await self.client.get_transaction(tx_hash) is not None:
                return
            raise

    async def send(
        self,
        *,
        to: str | None,
        data: bytes,
        value: int = 0,
        gas: int | None = None,
        intent: str | None = None,
    ) -> SentTransaction:
        """Estimate, sign with the next nonce and broadcast; returns before it is mined. With a
        ledger, a transaction already recorded for ``intent`` is re-broadcast and returned."""
        if intent is not None and (found := await self.recorded(intent)) is not None:
            return await self.resume(found)
        if gas is None:
            gas = await self.estimate_gas(to=to, data=data, value=value)
        fees = await self.estimate_fees()
        draft = TxDraft(
            to=address(to) if to is not None else None,
            data=data,
            value=value,
            gas=gas,
            fees=fees,
            intent=intent,
        )
        if self._ledger is None:
            sent = await self._send_in_process(draft)
        else:
            sent = await self._send_recorded(self._ledger, draft)
        sent.broadcast_at = self._clock()
        self._metrics.sent.labels(self.address).inc()
        log.info(
            "tx_sent",
            sender=self.address,
            tx_hash=sent.tx_hash,
            nonce=sent.nonce,
            gas=sent.gas,
            max_fee_per_gas=sent.fees.max_fee_per_gas,
            max_priority_fee_per_gas=sent.fees.max_priority_fee_per_gas,
        )
        return sent

    async def _send_in_process(self, draft: TxDraft) -> SentTransaction:
        """Nonces from this process's counter: right only while no other process uses the key."""
        # Allocation, signing and broadcast happen under one lock so a failed broadcast
        # never leaves a gap in front of later nonces.
        async with self._nonce_lock:
            if self._next_nonce is None:
                self._next_nonce = await self.client.get_transaction_count(self.address, "pending")
            sent = SentTransaction(
                nonce=self._next_nonce,
                to=draft.to,
                data=draft.data,
                value=draft.value,
                gas=draft.gas,
                fees=draft.fees,
            )
            raw, tx_hash = self._sign(sent)
            try:
                await self._submit(raw, tx_hash)
            except BaseException:
                self._next_nonce = None  # resync from the node's pending count next time
                raise
            self._next_nonce = sent.nonce + 1
        sent.hashes.append(tx_hash)
        return sent

    async def _send_recorded(self, ledger: TxLedger, draft: TxDraft) -> SentTransaction:
        """Nonce from the ledger, recorded before broadcast (see chain/ledger.py for why)."""
        sent = await ledger.issue(draft, chain_count=self._pending_count, sign=self._sign)
        # A failed broadcast raises and leaves the record: the retry re-broadcasts it.
        await self._submit(sent.raw, sent.tx_hash)
        return sent

    async def _pending_count(self) -> int:
        return await self.client.get_transaction_count(self.address, "pending")

    async def recorded(self, intent: str) -> SentTransaction | None:
        """The ledger's live or succeeded transaction for ``intent`` (None without a ledger)."""
        return None if self._ledger is None else await self._ledger.find(intent)

    async def resume(self, sent: SentTransaction) -> SentTransaction:
        """Re-broadcast a recorded transaction (the same signed bytes) before waiting on it."""
        try:
            await self._submit(sent.raw, sent.tx_hash)
        except RpcError as exc:
            # Mined in another version, dropped, or refused for now: `wait` tells which.
            log.info("tx_rebroadcast_refused", nonce=sent.nonce, error=exc.rpc_message)
        sent.broadcast_at = self._clock()
        log.info("tx_resumed", sender=self.address, nonce=sent.nonce, tx_hash=sent.tx_hash)
        return sent

    async def replace(self, sent: SentTransaction) -> bool:
        """Rebroadcast at the same nonce with fees bumped; False if the node refused it."""
        bps, cap = self.config.fee_bump_bps, self.config.max_fee_per_gas_cap
        try:  # above the cap the stuck transaction keeps waiting at its fees, never overpays
            quote = await self.estimate_fees()
            fees = replacement_within_cap(sent.fees, quote, bps, cap)
        except FeeCapExceeded:
            return False
        tip, max_fee = fees.max_priority_fee_per_gas, fees.max_fee_per_gas
        previous, sent.fees = sent.fees, fees
        raw, tx_hash = self._sign(sent)
        if self._ledger is not None:
            # Written before any node sees it, so whoever resumes this nonce knows every version.
            await self._ledger.record_version(sent, raw=raw, tx_hash=tx_hash)
        try:
            await self._submit(raw, tx_hash)
        except RpcError as exc:
            # "nonce too low" means a version already mined; "underpriced" we retry later.
            sent.fees = previous
            log.warning(
                "tx_replacement_refused", sender=self.address, nonce=sent.nonce, error=str(exc)
            )
            return False
        sent.hashes.append(tx_hash)
        sent.raw = raw
        sent.broadcast_at = self._clock()
        self._metrics.replaced.labels(self.address).inc()
        log.warning(
            "tx_replaced",
            sender=self.address,
            nonce=sent.nonce,
            tx_hash=tx_hash,
            replaces=sent.hashes[-2],
            max_fee_per_gas=max_fee,
            max_priority_fee_per_gas=tip,
        )
        return True

    # --- waiting ---

    async def _mined_receipt(self, sent: SentTransaction) -> TransactionReceipt | None:
        for tx_hash in reversed(sent.hashes):
            receipt = await self.client.get_transaction_receipt(tx_hash)
            if receipt is not None:
                return receipt
        return None

    async def wait(
        self, sent: SentTransaction, *, confirmations: int | None = None
    ) -> TransactionReceipt:
        """The receipt once ``confirmations`` blocks are on top of it (0 = mined), as the listener
        counts them; replaces the transaction if it is stuck."""
        needed = confirmations if confirmations is not None else self.config.confirmations
        config = self.config
        deadline = self._clock() + config.receipt_timeout_seconds
        while True:
            try:
                receipt = await self._poll(sent, needed)
            except (AllProvidersFailed, ProviderError) as exc:
                # Every provider down for a moment must not abandon a broadcast transaction.
                log.warning("tx_wait_rpc_failed", nonce=sent.nonce, error=str(exc))
            except TransactionDropped:
                await self._settle(sent, TxOutcome.DROPPED, None)
                raise
            else:
                if receipt is not None:
                    outcome = TxOutcome.SUCCEEDED if receipt.succeeded else TxOutcome.REVERTED
                    self._metrics.confirmed.labels(self.address, outcome.value).inc()
                    await self._settle(sent, outcome, receipt)
                    return receipt
            if self._clock() >= deadline:
                raise TransactionError(
                    f"transaction {sent.tx_hash} (nonce {sent.nonce}) not confirmed in "
                    f"{config.receipt_timeout_seconds:g}s"
                )
            await asyncio.sleep(config.poll_interval_seconds)

    async def _current_head(self) -> int:
        """The head, shared by every waiting transaction: one lookup per half poll interval."""
        if self._head is not None and self._clock() - self._head_at < (
            self.config.poll_interval_seconds / 2
        ):
            return self._head
        if self._head_lookup is None or self._head_lookup.done():
            self._head_lookup = asyncio.ensure_future(self.client.block_number())
        head = await asyncio.shield(self._head_lookup)
        self._head, self._head_at = head, self._clock()
        return head

    async def _poll(self, sent: SentTransaction, needed: int) -> TransactionReceipt | None:
        """One look: the confirmed receipt, or None (after replacing the tx if it is stuck)."""
        head = await self._current_head()
        # Receipts and nonces only change with a new block: skip the lookups until one comes.
        if head != sent.checked_at_head:
            sent.checked_at_head = head
            receipt = await self._mined_receipt(sent)
            if receipt is not None:
                sent.nonce_used_elsewhere = 0
                if head - receipt.block_number < needed:
                    return None
                # Re-read: a reorg while we counted may have moved or dropped it.
                again = await self.client.get_transaction_receipt(receipt.tx_hash)
                if again is not None and again.block_hash == receipt.block_hash:
                    return again
                sent.checked_at_head = -1
                return None
            mined_nonce = await self.client.get_transaction_count(self.address, "latest")
            if mined_nonce > sent.nonce:
                # Our receipt may just lag the nonce on a load-balanced provider: look again.
                await self._learn_versions(sent)
                sent.nonce_used_elsewhere += 1
                sent.checked_at_head = -1
                if sent.nonce_used_elsewhere >= 3:
                    raise TransactionDropped(
                        f"nonce {sent.nonce} of {self.address} was used by another transaction"
                    )
                return None
        waited = self._clock() - max(sent.broadcast_at, sent.healed_at)
        if self._ledger is not None and waited >= self.config.heal_gap_seconds:
            await self._heal_gap(sent)
        if (
            self._clock() - sent.broadcast_at >= self.config.replace_after_seconds
            and sent.replacements < self.config.max_replacements
        ):
            await self.replace(sent)
        return None

    async def _settle(
        self, sent: SentTransaction, outcome: TxOutcome, receipt: TransactionReceipt | None
    ) -> None:
        if self._ledger is not None:
            await self._ledger.settle(sent, outcome, receipt)

    async def _learn_versions(self, sent: SentTransaction) -> None:
        """Add the versions another replica recorded for this nonce (its replacements)."""
        recorded = None if self._ledger is None else await self._ledger.at_nonce(sent.nonce)
        if recorded is not None:
            sent.hashes += [h for h in recorded.hashes if h not in sent.hashes]

    async def _heal_gap(self, sent: SentTransaction) -> None:
        """Re-broadcast the ledger's transaction at the lowest unmined nonce (one recorded by a
        sender that died before broadcasting it holds every later nonce back)."""
        assert self._ledger is not None
        sent.healed_at = self._clock()
        mined_nonce = await self.client.get_transaction_count(self.address, "latest")
        if mined_nonce > sent.nonce:
            return  # ours is mined or replaced: `_poll` will see which
        blocker = await self._ledger.at_nonce(mined_nonce)
        if blocker is None or blocker.outcome is not None:
            return
        try:
            await self._submit(blocker.raw, blocker.tx_hash)
        except RpcError as exc:
            log.info("tx_gap_rebroadcast_refused", nonce=blocker.nonce, error=exc.rpc_message)
        else:
            log.info("tx_gap_rebroadcast", nonce=blocker.nonce, tx_hash=blocker.tx_hash)

    async def send_and_wait(
        self,
        *,
        to: str | None,
        data: bytes,
        value: int = 0,
        gas: int | None = None,
        confirmations: int | None = None,
    ) -> tuple[SentTransaction, TransactionReceipt]:
        """`send` then `wait`."""
        sent = await self.send(to=to, data=data, value=value, gas=gas)
        return sent, await self.wait(sent, confirmations=confirmations)
