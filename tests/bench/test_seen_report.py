"""The payment_seen section's rows and JSON: both figures beside their goals (no timings run)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.results import Latency, Report
from bench.seen import SeenFigures, add_seen


def figures(seen_p50: float, paid_p50: float) -> SeenFigures:
    return SeenFigures(
        confirmations=2,
        block_seconds=1,
        seen=Latency(n=3, p50=seen_p50, p95=seen_p50, p99=seen_p50),
        paid=Latency(n=3, p50=paid_p50, p95=paid_p50, p99=paid_p50),
        zero_conf_paid=Latency(n=3, p50=30.0, p95=40.0, p99=40.0),
        first_seen_confirmations=[0, 0, 1],
    )


def test_both_figures_land_beside_their_goals_in_the_table_and_the_json(tmp_path: Path) -> None:
    report = Report()
    add_seen(report, figures(seen_p50=40.0, paid_p50=2150.0))

    written = json.loads(report.write(tmp_path).read_text())["data"]["payment_seen"]

    assert written["paid_goal_ms"] == 2100.0  # 2 confirmations x 1 s + 100 ms
    assert (written["seen_goal_met"], written["paid_goal_met"]) == (True, False)
    assert written["zero_conf_paid"]["p50"] == 30.0
    assert written["first_seen_confirmations"] == [0, 0, 1]
    notes = [r.note for r in report.rows]
    assert notes[0].startswith("goal p50<=100: met; first frame said 0 of 2 in 2/3")
    assert notes[1] == "goal p50<=2100: MISSED"
