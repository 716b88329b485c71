"""One eth_getLogs range at a time, adaptive in size and checked for a consistent view.

A range is read as: header of its last block, the logs, the header again. If the two
headers differ, or another provider answered in between, the logs may mix two views of the
chain (a reorg mid-read, a lagging backup provider that silently returns fewer logs), so
the range is read again. Logs carry block numbers and hashes: no per-block fetches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from chain.client import ChainClient
from chain.errors import AllProvidersFailed, EventDecodeError, LogQueryTooLarge, ProviderTimeout
from chain.events import ESCROW_EVENT_TOPICS
from chain.hexutil import address, hash32, to_int
from listener.config import ListenerConfig
from listener.metrics import ListenerMetrics
from listener.observed import ObservedEvent, observe
from listener.ranges import AdaptiveRange
from listener.store import BlockRef

log = structlog.get_logger(__name__)

MAX_INCONSISTENT_READS = 5


class ProviderBehind(Exception):
    """The serving provider does not have a block we need yet (lag, not a reorg)."""


class InconsistentView(Exception):
    """The chain kept moving under a range read; try again on the next cycle."""


@dataclass(frozen=True, kw_only=True)
class LogBatch:
    """Every escrow event in blocks [start, end.number], in chain order."""

    start: int
    end: BlockRef
    events: list[ObservedEvent]
    # Hashes of the blocks the events sit in (kept for fork-point search).
    blocks: list[BlockRef]


class LogFetcher:
    """Reads escrow logs of one contract in adaptive ranges."""

    def __init__(
        self, client: ChainClient, config: ListenerConfig, metrics: ListenerMetrics
    ) -> None:
        self._client = client
        self._config = config
        self._metrics = metrics
        self.range = AdaptiveRange(
            size=config.initial_block_range,
            minimum=config.min_block_range,
            maximum=config.max_block_range,
        )
        metrics.log_range.set(self.range.size)

    async def header(self, number: int) -> BlockRef:
        """A canonical block as the serving provider sees it; ProviderBehind if it lacks it."""
        block = await self._client.get_block(number)
        if block is None:
            raise ProviderBehind(f"provider {self._client.current_provider} lacks block {number}")
        return BlockRef(number=block.number, hash=block.hash)

    async def fetch(self, start: int, limit: int) -> LogBatch:
        """The next range starting at `start` (ending at most at `limit`)."""
        for _ in range(MAX_INCONSISTENT_READS):
            end = self.range.end(start, limit)
            span = end - start + 1
            before = await self.header(end)
            provider = self._client.current_provider_index
            try:
                raw = await self._client.get_logs(
                    from_block=start,
                    to_block=end,
                    address=self._config.contract_address,
                    topics=[list(ESCROW_EVENT_TOPICS)],
                )
            except LogQueryTooLarge as exc:
                self._refused(span, "too_large", exc.suggested_from_block, exc.suggested_to_block)
                continue
            except AllProvidersFailed as exc:
                if isinstance(exc.last_error, ProviderTimeout) and span > 1:
                    self._refused(span, "timeout", None, None)
                    continue
                raise
            after = await self.header(end)
            if after != before or self._client.current_provider_index != provider:
                self._metrics.inconsistent_reads.inc()
                log.info("listener_range_reread", start=start, end=end, reason="view_changed")
                continue
            try:
                batch = self._batch(start, after, raw)
            except InconsistentView as exc:
                self._metrics.inconsistent_reads.inc()
                log.info("listener_range_reread", start=start, end=end, reason=str(exc))
                continue
            self.range.succeeded(span, len(raw))
            self._metrics.log_range.set(self.range.size)
            self._metrics.blocks_scanned.inc(span)
            return batch
        raise InconsistentView(
            f"range from {start} kept changing under {MAX_INCONSISTENT_READS} reads"
        )

    def _refused(self, span: int, reason: str, low: int | None, high: int | None) -> None:
        suggested = high - low + 1 if low is not None and high is not None else None
        if span <= self.range.minimum and (suggested is None or suggested >= span):
            raise RuntimeError(f"eth_getLogs refuses even {span} block(s) ({reason})")
        self.range.refused(span, suggested)
        self._metrics.range_refusals.labels(reason).inc()
        self._metrics.log_range.set(self.range.size)
        log.info("listener_range_shrunk", reason=reason, span=span, new_size=self.range.size)

    def _batch(self, start: int, end: BlockRef, raw: Sequence[Mapping[str, Any]]) -> LogBatch:
        hashes: dict[int, str] = {end.number: end.hash}
        events: list[ObservedEvent] = []
        contract = self._config.contract_address
        for entry in raw:
            if entry.get("removed"):
                continue
            number = to_int(entry["blockNumber"])
            block_hash = hash32(entry["blockHash"])
            if not start <= number <= end.number:
                raise InconsistentView(f"log in block {number} outside {start}..{end.number}")
            if hashes.setdefault(number, block_hash) != block_hash:
                raise InconsistentView(f"two hashes for block {number}")
            if address(entry["address"]) != contract:
                continue
            try:
                events.append(observe(entry, self._config.chain_id))
            except EventDecodeError as exc:
                # Only a contract change could produce this; skipping beats stalling forever.
                log.error("listener_undecodable_log", block=number, error=str(exc))
                self._metrics.events.labels("unknown", "undecodable").inc()
        events.sort(key=lambda e: e.order)
        blocks = [BlockRef(number=n, hash=h) for n, h in sorted(hashes.items())]
        return LogBatch(start=start, end=end, events=events, blocks=blocks)
