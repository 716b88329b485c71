"""Prometheus metrics of the listener, registered on the registry the caller passes."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ListenerMetrics:
    """Heads, checkpoint, lag, events by type and outcome, reorgs, ranges, leadership."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._progress(registry)
        self._ranges(registry)
        self._reorgs(registry)
        self._connection(registry)

    def _progress(self, registry: CollectorRegistry) -> None:
        """Where the listener is: head, confirmed, checkpoint, lag, events handled."""
        self.head = Gauge("bookme_listener_head_block", "Chain head seen.", registry=registry)
        self.confirmed = Gauge(
            "bookme_listener_confirmed_block",
            "Newest block with enough confirmations.",
            registry=registry,
        )
        self.checkpoint = Gauge(
            "bookme_listener_checkpoint_block",
            "Newest block whose events are all stored and signalled.",
            registry=registry,
        )
        self.lag = Gauge(
            "bookme_listener_lag_blocks", "Head minus checkpoint, in blocks.", registry=registry
        )
        self.events = Counter(
            "bookme_listener_events",
            "Escrow events handled, by type and outcome (signalled, started, skipped...).",
            ["event_type", "outcome"],
            registry=registry,
        )
        self.signal_latency = Histogram(
            "bookme_listener_block_to_signal_seconds",
            "Block timestamp to signal sent (when the node reports block timestamps).",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0),
            registry=registry,
        )
        self.blocks_scanned = Counter(
            "bookme_listener_blocks_scanned", "Blocks covered by eth_getLogs.", registry=registry
        )

    def _ranges(self, registry: CollectorRegistry) -> None:
        """The adaptive eth_getLogs range and the reads it had to redo."""
        self.log_range = Gauge(
            "bookme_listener_log_range_blocks",
            "Current adaptive eth_getLogs range.",
            registry=registry,
        )
        self.range_refusals = Counter(
            "bookme_listener_log_range_refusals",
            "eth_getLogs answers that forced a smaller range, by reason.",
            ["reason"],
            registry=registry,
        )
        self.inconsistent_reads = Counter(
            "bookme_listener_inconsistent_reads",
            "Ranges re-read because the chain moved or the provider changed mid-read.",
            registry=registry,
        )
        self.provider_behind = Counter(
            "bookme_listener_provider_behind",
            "Cycles skipped because the serving provider was behind the checkpoint.",
            registry=registry,
        )

    def _reorgs(self, registry: CollectorRegistry) -> None:
        self.reorgs = Counter(
            "bookme_listener_reorgs",
            "Confirmed reorgs that rewound the checkpoint.",
            registry=registry,
        )
        self.reorg_depth = Histogram(
            "bookme_listener_reorg_depth_blocks",
            "Checkpoint minus fork point of each reorg.",
            buckets=(1, 2, 3, 5, 8, 13, 21, 34, 64, 128, 256),
            registry=registry,
        )
        self.suspected_reorgs = Counter(
            "bookme_listener_suspected_reorgs",
            "Hash mismatches the second read did not confirm.",
            registry=registry,
        )

    def _connection(self, registry: CollectorRegistry) -> None:
        """Subscriptions, failed cycles, leadership and the serving provider."""
        self.subscriptions = Counter(
            "bookme_listener_subscriptions",
            "newHeads subscriptions opened, by outcome (opened, dropped, stale, unavailable).",
            ["outcome"],
            registry=registry,
        )
        self.cycle_errors = Counter(
            "bookme_listener_cycle_errors",
            "Sync cycles that failed and were retried, by error type.",
            ["error"],
            registry=registry,
        )
        self.leader = Gauge(
            "bookme_listener_leader", "1 while this replica holds the lock.", registry=registry
        )
        self.provider = Gauge(
            "bookme_listener_provider",
            "1 for the RPC provider currently serving the listener.",
            ["provider"],
            registry=registry,
        )
