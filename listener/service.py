"""The `Listener`: leadership, head following, confirmed-range scanning, reorgs, checkpoint.

One cycle (`sync_once`): read the head; check the checkpoint block is still canonical
(rewinding on a confirmed reorg); then for each adaptive range up to head - CONFIRMATIONS:
fetch logs, store + signal every event, and only then advance the checkpoint. A crash at
any point leaves the checkpoint at or before the last fully signalled block; the replay
re-signals what the workflows have not applied (they dedupe by event identity).

Before the confirmed ranges, payments in the unconfirmed blocks go out as `payment_seen`
sightings (listener/sightings.py): best effort, outside the invariant, never money.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time

import structlog
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from chain.client import ChainClient
from chain.event_key import event_key
from listener.config import ListenerConfig
from listener.delivery import Deliverer
from listener.fetch import LogFetcher
from listener.heads import HeadWatcher
from listener.lock import Leadership, LeadershipLost, Lease, lock_key
from listener.metrics import ListenerMetrics
from listener.reorg import ReorgBeyondWindow, ReorgDetector, Verdict
from listener.sightings import METRIC_KIND, SightingForwarder, SightingSink
from listener.sink import SignalSink
from listener.store import BlockRef, ListenerStore, StoredEvent

log = structlog.get_logger(__name__)

LEADERSHIP_CHECK_SECONDS = 1.0


class Listener:
    """Follows one escrow contract and signals workflows; run with `run()`."""

    def __init__(
        self,
        *,
        config: ListenerConfig,
        client: ChainClient,
        engine: AsyncEngine,
        sink: SignalSink,
        registry: CollectorRegistry | None = None,
        sightings: SightingSink | None = None,
    ) -> None:
        self.config = config
        self._client = client
        self.metrics = ListenerMetrics(registry if registry is not None else CollectorRegistry())
        self.store = ListenerStore(
            engine, chain_id=config.chain_id, contract_address=config.contract_address
        )
        self.leadership = Leadership(
            engine,
            lock_key(config.chain_id, config.contract_address),
            retry_seconds=config.standby_retry,
        )
        self.fetcher = LogFetcher(client, config, self.metrics)
        self.deliverer = Deliverer(
            self.store,
            sink,
            self.metrics,
            concurrency=config.signal_concurrency,
            cache_size=config.booking_cache_size,
        )
        self.reorgs = ReorgDetector(
            self.fetcher, self.store, confirm_delay=config.reorg_confirm_delay
        )
        self.heads = HeadWatcher(client, self.metrics, stale_after=config.head_stale_after)
        self.sightings = (
            None
            if sightings is None
            else SightingForwarder(
                client, config, sightings, self.deliverer.resolve_bookings, self.metrics
            )
        )
        self.cursor: BlockRef | None = None
        self._lease: Lease | None = None
        self._cursor_loaded = False
        self._provider = ""
        self.heads_seen = 0
        self._checked_at = -math.inf
        # Events stored above the checkpoint by an earlier, interrupted attempt (None = look).
        self._unsettled: dict[str, StoredEvent] | None = None

    # --- the loop ---

    async def run(self) -> None:
        """Forever: wait for leadership, follow the chain, fall back to standby if deposed."""
        while True:
            lease = await self.leadership.acquire()
            self.metrics.leader.set(1)
            try:
                await self.lead(lease)
            except LeadershipLost as exc:
                log.error("listener_deposed", error=str(exc))
            finally:
                self.metrics.leader.set(0)
                self._lease = None
                await self.leadership.release()

    async def lead(self, lease: Lease | None) -> None:
        """Follow the chain as leader until cancelled or deposed."""
        self._lease = lease
        self._cursor_loaded = False
        self._checked_at = -math.inf
        self._unsettled = None
        if self.sightings is not None:
            self.sightings.reset()
        watcher = asyncio.create_task(self.heads.run(), name="listener-heads")
        backoff = self.config.retry_initial
        try:
            while True:
                self.heads.wake.clear()
                try:
                    await self.sync_once()
                    backoff = self.config.retry_initial
                except LeadershipLost:
                    raise
                except ReorgBeyondWindow as exc:
                    # Rewinding further needs a human: stop rather than guess.
                    log.critical("listener_reorg_beyond_window", error=str(exc))
                    raise
                except Exception as exc:  # provider, Postgres or Temporal trouble: retry
                    self.metrics.cycle_errors.labels(type(exc).__name__).inc()
                    self._unsettled = None
                    log.warning(
                        "listener_cycle_failed",
                        error_type=type(exc).__name__,
                        error=str(exc),
                        retry_in=backoff,
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.config.retry_max)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.heads.wake.wait(), self.config.poll_interval)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    # --- one cycle ---

    async def sync_once(self, *, up_to: int | None = None) -> None:
        """Bring the checkpoint up to the confirmed head, or `up_to` if lower (one pass)."""
        now = time.monotonic()
        if self._lease is not None and now - self._checked_at >= LEADERSHIP_CHECK_SECONDS:
            # Not every cycle: the checkpoint write is fenced anyway; this only makes a
            # deposed leader notice (and stop signalling) within a second.
            await self.leadership.check()
            self._checked_at = now
        if not self._cursor_loaded:
            self.cursor = await self.store.load_cursor()
            self._cursor_loaded = True
        head = await self._client.block_number()
        self._observe_head(head)
        confirmed = head - self.config.confirmations
        self.metrics.confirmed.set(confirmed)
        if up_to is not None:
            confirmed = min(confirmed, up_to)
        if self.cursor is None and self.config.start_block > 0:
            # Anchor the scan at the block before the start: the first reorg check and
            # fork-point search then have a hash to compare with.
            anchor = await self.fetcher.header(self.config.start_block - 1)
            await self.store.advance(anchor, [], keep=self.config.reorg_window, lease=self._lease)
            self.cursor = anchor
        cursor = self.cursor
        if cursor is not None:
            if head < cursor.number:
                # Behind us: a lagging provider (or a shorter fork, which shows once it grows).
                self.metrics.provider_behind.inc()
                log.info("listener_provider_behind", head=head, checkpoint=cursor.number)
                return
            verdict = await self.reorgs.check(cursor)
            if verdict is Verdict.UNSURE:
                self.metrics.suspected_reorgs.inc()
                return
            if verdict is Verdict.REORGED:
                await self._rewind(cursor)
        await self._sight(head)
        await self._catch_up(confirmed)

    async def _sight(self, head: int) -> None:
        if self.sightings is None:
            return
        try:
            checkpoint = self.cursor.number if self.cursor is not None else -1
            await self.sightings.scan(head, checkpoint=checkpoint)
        except Exception as exc:  # a sighting is news, not money: the confirmed scan goes on
            self.metrics.events.labels(METRIC_KIND, "scan_failed").inc()
            log.warning("listener_sightings_failed", error_type=type(exc).__name__, error=str(exc))

    async def _catch_up(self, confirmed: int) -> None:
        start = self.cursor.number + 1 if self.cursor else self.config.start_block
        if self._unsettled is None:
            stored = await self.store.events_above(start - 1)
            self._unsettled = {self._key(row): row for row in stored}
        while start <= confirmed:
            batch = await self.fetcher.fetch(start, confirmed)
            await self._settle(batch.start, batch.end.number, {e.key for e in batch.events})
            await self.deliverer.deliver(batch.events)
            if self.sightings is not None:
                await self.sightings.confirmed(batch.end.number, [e.signal for e in batch.events])
            await self.store.advance(
                batch.end, batch.blocks, keep=self.config.reorg_window, lease=self._lease
            )
            self.cursor = batch.end
            self.metrics.checkpoint.set(batch.end.number)
            self.metrics.lag.set(max(0, self.heads_seen - batch.end.number))
            if batch.events:
                log.info(
                    "listener_range_delivered",
                    start=batch.start,
                    end=batch.end.number,
                    events=len(batch.events),
                    range=self.fetcher.range.size,
                )
            start = batch.end.number + 1

    def _key(self, row: StoredEvent) -> str:
        return event_key(self.config.chain_id, row.tx_hash, row.log_index)

    async def _settle(self, start: int, end: int, present: set[str]) -> None:
        """Retract events an interrupted attempt stored (maybe signalled) that are gone now.

        Above the checkpoint no reorg check looks, so a crash followed by a reorg there
        would otherwise leave an orphaned, possibly signalled, event live forever.
        """
        if not self._unsettled:
            return
        in_range = [r for r in self._unsettled.values() if start <= r.block_number <= end]
        vanished = [r for r in in_range if self._key(r) not in present]
        if vanished:
            unheard = await self.deliverer.revert(self.config.chain_id, vanished)
            await self.store.mark_reorged(
                [(r.tx_hash, r.log_index) for r in vanished],
                reason=f"not in blocks {start}..{end} when re-read after an interruption",
            )
            await self.store.note_unheard_reverts(unheard)
            self.metrics.reorgs.inc()
            log.warning("listener_unsettled_events_vanished", count=len(vanished), start=start)
        for row in in_range:
            self._unsettled.pop(self._key(row), None)

    async def _rewind(self, cursor: BlockRef) -> None:
        fork = await self.reorgs.fork_point(cursor)
        orphaned = await self.store.events_above(fork.number)
        # Reverts first: if we crash before the rewind commits, the next run finds the
        # same mismatch and sends them again (workflows dedupe), never skips them.
        unheard = await self.deliverer.revert(self.config.chain_id, orphaned)
        marked = await self.store.rewind(
            fork,
            orphaned,
            reason=f"reorg: block {cursor.number} {cursor.hash} left the chain; fork at {fork.number}",
            lease=self._lease,
        )
        await self.store.note_unheard_reverts(unheard)
        self.cursor = fork
        self._unsettled = {}
        self.metrics.reorgs.inc()
        self.metrics.reorg_depth.observe(cursor.number - fork.number)
        self.metrics.checkpoint.set(fork.number)
        log.warning(
            "listener_reorg",
            old_checkpoint=cursor.number,
            old_hash=cursor.hash,
            fork_point=fork.number,
            fork_hash=fork.hash,
            depth=cursor.number - fork.number,
            events_reorged=marked,
        )

    def _observe_head(self, head: int) -> None:
        self.heads_seen = head
        self.heads.polled(head)
        self.metrics.head.set(head)
        if self.cursor is not None:
            self.metrics.lag.set(max(0, head - self.cursor.number))
        provider = self._client.current_provider
        if provider != self._provider:
            if self._provider:
                self.metrics.provider.labels(self._provider).set(0)
                log.warning("listener_provider_changed", provider=provider, previous=self._provider)
            self.metrics.provider.labels(provider).set(1)
            self._provider = provider
