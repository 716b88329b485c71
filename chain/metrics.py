"""Prometheus metrics of the RPC client, registered on the registry the caller passes."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class RpcMetrics:
    """Requests, errors and failovers per provider, and which provider serves."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "bookme_rpc_requests",
            "JSON-RPC requests sent, by provider and method.",
            ["provider", "method"],
            registry=registry,
        )
        self.errors = Counter(
            "bookme_rpc_errors",
            "JSON-RPC provider failures, by provider and kind (timeout, rate_limited...).",
            ["provider", "kind"],
            registry=registry,
        )
        self.failovers = Counter(
            "bookme_rpc_failovers",
            "Switches of the serving provider.",
            ["from_provider", "to_provider"],
            registry=registry,
        )
        self.serving = Gauge(
            "bookme_rpc_serving_provider_index",
            "Index in the configured list of the provider that answered last (0 = preferred).",
            registry=registry,
        )
        self.latency = Histogram(
            "bookme_rpc_request_seconds",
            "Latency of successful JSON-RPC requests.",
            ["provider"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )


class TxMetrics:
    """Transactions sent, replaced and confirmed, per sending address."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "bookme_tx_sent",
            "Transactions broadcast (first versions, not replacements).",
            ["sender"],
            registry=registry,
        )
        self.replaced = Counter(
            "bookme_tx_replaced",
            "Same-nonce replacements of stuck transactions.",
            ["sender"],
            registry=registry,
        )
        self.fee_cap_refusals = Counter(
            "bookme_tx_fee_cap_refusals",
            "Sends and replacements refused because the gas price needed a max fee above the cap.",
            ["sender"],
            registry=registry,
        )
        self.confirmed = Counter(
            "bookme_tx_confirmed",
            "Transactions confirmed, by outcome (succeeded, reverted).",
            ["sender", "outcome"],
            registry=registry,
        )
