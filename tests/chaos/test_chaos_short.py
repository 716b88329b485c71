"""The chaos run, short: ~30 bookings, every app killed once, one RPC fault, a Postgres restart
and both reorgs, then the same checks as `make chaos`, which must all hold."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from bench.chaos.config import ChaosConfig
from bench.chaos.harness import run_chaos
from bench.chaos.report import passed, to_json

pytestmark = [pytest.mark.integration, pytest.mark.timeout(290)]

SHORT = ChaosConfig(
    seed=20_261_122,
    bookings=30,
    faults=8,  # 4 kills, 1 RPC fault, a Postgres restart, a deep and a shallow reorg
    duration=30.0,
    concurrency=10,
    quiescence_timeout=150.0,
    server_restarts=("postgres",),
)


async def test_short_chaos_run_breaks_no_invariant() -> None:
    # Not under pytest's basetemp, whose 0700 parent locks the Postgres account out.
    workdir = Path(tempfile.mkdtemp(prefix="bookme-chaos-test-"))
    summary = await run_chaos(SHORT, workdir, "tests/chaos/test_chaos_short.py")
    report = to_json(summary)
    kinds = {f["kind"] for f in report["faults"] if f["ok"]}
    assert len(kinds) >= 7, report["faults"]
    assert summary.checks.violations  # the checks ran
    assert summary.checks.total == 0, (
        "\n".join(
            f"{name}: {problem}"
            for name, problems in report["violations"].items()
            for problem in problems
        )
        + f"\nfaults: {report['faults']}"
    )
    assert passed(summary), report
    shutil.rmtree(workdir, ignore_errors=True)
