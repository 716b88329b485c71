"""Prometheus series of the reconciler: one gauge per money invariant (0 = holds), stuck bookings."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from workflows.reconcile_types import InvariantName


class ReconcileMetrics:
    """Registered on the registry the caller passes (the worker's /metrics)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.invariants = {
            name.value: Gauge(
                f"bookme_invariant_{name.value}_violations",
                f"Violations of the money invariant {name.value} at the last check (0 = holds).",
                registry=registry,
            )
            for name in InvariantName
        }
        self.stuck = Gauge(
            "bookme_stuck_bookings",
            "Bookings past a deadline and still non-terminal at the last reconcile.",
            registry=registry,
        )
        self.divergences = Counter(
            "bookme_reconcile_divergences",
            "Divergences found by reconcile runs, by kind and action.",
            ["kind", "action"],
            registry=registry,
        )
        self.last_run = Gauge(
            "bookme_reconcile_last_run_timestamp_seconds",
            "When the last reconcile run finished (unix time).",
            registry=registry,
        )

    def record_invariants(self, counts: dict[str, int]) -> None:
        for name, violations in counts.items():
            gauge = self.invariants.get(name)
            if gauge is not None:
                gauge.set(violations)
