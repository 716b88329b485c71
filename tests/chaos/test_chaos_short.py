"""The chaos run, short, at production shape (two worker and two API replicas behind the reverse
proxy, three listeners): ~30 bookings (every attack kind among them), every app kind killed once,
one RPC fault, a Postgres restart and both reorgs, then the same checks as `make chaos`, which
must all hold. The longer faults of production shape (partitions, Temporal down two minutes, the
clock step, a kill mid operator burst) are `make chaos`'s and `make soak`'s."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bench.chaos.checks import (
    ATTACKS_REFUSED,
    ATTACKS_REVERTED,
    VICTIMS_SERVED,
    VICTIMS_SETTLED,
)
from bench.chaos.config import ChaosConfig
from bench.chaos.faults import KILLS, FaultKind
from bench.chaos.harness import run_chaos
from bench.chaos.report import RunSummary, passed
from bench.chaos.shape_checks import OPERATOR_LEDGER, RETRY_HINT
from bench.chaos.stack import APIS, LISTENERS, WORKERS
from bench.chaos.workload import ATTACKS, pays_relayed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(290)]

SHORT = ChaosConfig(
    seed=20_261_122,
    bookings=30,
    faults=8,  # 4 kills, 1 RPC fault, a Postgres restart, a deep and a shallow reorg
    duration=30.0,
    concurrency=10,
    quiescence_timeout=150.0,
    server_restarts=("postgres",),
    adversary_share=0.25,  # 7 attacks: each kind once, and one more
    production_faults=False,
    burst_slot=0,  # bunched appointments would hold the run up to a minute longer
)


@pytest.fixture(scope="module")
async def summary() -> AsyncIterator[RunSummary]:
    # Not under pytest's basetemp, whose 0700 parent locks the Postgres account out.
    workdir = Path(tempfile.mkdtemp(prefix="bookme-chaos-test-"))
    result = await run_chaos(SHORT, workdir, "tests/chaos/test_chaos_short.py")
    yield result
    shutil.rmtree(workdir, ignore_errors=True)


def test_every_planned_fault_is_injected_and_every_check_runs(summary: RunSummary) -> None:
    injected = {w.kind for w in summary.windows if w.ok}
    assert injected >= {*KILLS, FaultKind.RESTART_POSTGRES, FaultKind.REORG_DEEP}, summary.windows
    assert FaultKind.REORG_SHALLOW in injected
    assert len(summary.windows) == SHORT.faults
    assert set(summary.checks.violations) >= {
        "final state matches the chain",
        "each chain event applied exactly once",
        "money invariants",
        "no booking stuck past a deadline",
        "no 5xx except 503 in an outage",
        ATTACKS_REFUSED,
        ATTACKS_REVERTED,
        VICTIMS_SERVED,
        VICTIMS_SETTLED,
        OPERATOR_LEDGER,
        RETRY_HINT,
    }
    assert sum(summary.checks.final_states.values()) >= SHORT.bookings // 2


def test_the_run_is_at_production_shape_and_goes_through_the_reverse_proxy(
    summary: RunSummary,
) -> None:
    assert set(summary.apps) >= {*WORKERS, *APIS, *LISTENERS}
    assert len(WORKERS) == len(APIS) == 2
    assert len(LISTENERS) == 3
    assert summary.front_requests >= len([c for c in summary.bookings if c.booking_id is not None])
    # Every fault was followed by a measured return to health.
    assert all(w.recovery_seconds is not None for w in summary.windows), summary.windows


def test_short_chaos_run_breaks_no_invariant(summary: RunSummary) -> None:
    problems = [
        f"{name}: {problem}"
        for name, found in summary.checks.violations.items()
        for problem in found
    ]
    assert problems == []
    assert passed(summary)


def test_every_attack_is_tried_and_its_victims_settle(summary: RunSummary) -> None:
    log = summary.adversary
    assert log is not None
    assert {r.kind for r in summary.bookings} >= set(ATTACKS)
    tried = {r.attack for r in log.refusals} | {t.attack for t in log.reverts}
    assert tried >= set(ATTACKS) - {r.kind for r in summary.bookings if r.error}, log.refusals
    assert log.expectations, "no victim booking reached the end of its flow"
    assert summary.checks.latency["requests"] > 0


def test_relayed_payments_go_through_the_faults_like_any_other(summary: RunSummary) -> None:
    """Some honest customers pay with one signature the platform relays (issue #19); the checks
    above (final state = chain, each event once, money) judge those bookings too."""
    relayed = [r for r in summary.bookings if pays_relayed(r)]
    assert relayed, "the plan relays no payment"
    assert any(r.payment_tx and not r.error for r in relayed), relayed
