"""Where a lifecycle's wall time goes: the steps partition it and their percentiles add up."""

from __future__ import annotations

import itertools

import pytest

from bench.steps import TOTAL, step_latencies, steps_text
from bench.traffic import Lifecycle, dev_accounts_for
from bookme.devchain import ROLE_ACCOUNTS
from bookme.embedded.anvil import ANVIL_DEFAULT_ACCOUNTS


def _run(start: float, gaps: list[float]) -> Lifecycle:
    """A lifecycle whose successive timestamps are `gaps` seconds apart from `start`."""
    at = list(itertools.accumulate(gaps, initial=start))
    return Lifecycle(
        started=at[0],
        created=at[1],
        authorized=at[2],
        payment_sent=at[3],
        receipt_visible=at[4],
        paid_seen=at[5],
        completion_sent=at[6],
        completion_receipt=at[7],
        completed_seen=at[8],
    )


def test_steps_partition_the_lifecycle_in_order():
    run = _run(1000.0, [0.1, 0.2, 0.01, 0.02, 0.3, 0.03, 0.04, 0.5])
    steps = run.steps()
    assert list(steps) == [
        "create",
        "authorize",
        "pay send",
        "pay receipt",
        "receipt->PAID",
        "complete send",
        "complete receipt",
        "receipt->COMPLETED",
    ]
    assert steps["receipt->PAID"] == pytest.approx(run.paid_latency)
    assert steps["authorize"] == pytest.approx(0.2)
    assert sum(steps.values()) == pytest.approx(run.completed_seen - run.started)


def test_step_latencies_give_each_step_and_the_whole_lifecycle_in_ms():
    # Create takes 100..1000 ms over ten runs; the rest a fixed 10 ms each.
    runs = [_run(50.0 * n, [0.1 * (n + 1)] + [0.01] * 7) for n in range(10)]
    steps = step_latencies([r.steps() for r in runs])
    assert list(steps)[-1] == TOTAL
    assert steps["create"].n == 10
    assert steps["create"].p50 == pytest.approx(500.0)
    assert steps["create"].p99 == pytest.approx(1000.0)
    assert steps["receipt->COMPLETED"].p50 == pytest.approx(10.0)
    assert steps[TOTAL].p50 == pytest.approx(570.0)
    assert steps[TOTAL].p99 == pytest.approx(1070.0)
    assert steps_text(steps, "p50").startswith("create 500, authorize 10, pay send 10")
    assert steps_text(steps, "p99").endswith("lifecycle 1070")


def test_no_runs_give_only_an_empty_total():
    steps = step_latencies([])
    assert list(steps) == [TOTAL]
    assert steps[TOTAL].n == 0


def test_the_bench_funds_two_customer_wallets_per_lifecycle_in_flight():
    # Never fewer than the dev chain's five customers (the last account is the emitter's).
    assert dev_accounts_for(1) == ANVIL_DEFAULT_ACCOUNTS
    assert dev_accounts_for(48) == ROLE_ACCOUNTS + 96 + 1
