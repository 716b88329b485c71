"""Where a lifecycle's wall time goes: percentiles of each step over many lifecycles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from bench.results import Latency

# The whole lifecycle, beside its steps (the steps' sum, started -> COMPLETED seen).
TOTAL = "lifecycle"


def step_latencies(runs: Sequence[Mapping[str, float]]) -> dict[str, Latency]:
    """Per step (seconds per run, as `Lifecycle.steps()` gives them), its latency in ms, in
    the runs' step order, then the whole lifecycle's under `TOTAL`."""
    names = list(runs[0]) if runs else []
    steps = {name: Latency.of_seconds([run[name] for run in runs]) for name in names}
    steps[TOTAL] = Latency.of_seconds([sum(run.values()) for run in runs])
    return steps


def steps_text(steps: Mapping[str, Latency], percentile: Literal["p50", "p95", "p99"]) -> str:
    """One line: each step's `percentile` ("p50", "p95", "p99") in whole ms."""
    return ", ".join(f"{name} {getattr(lat, percentile):.0f}" for name, lat in steps.items())
