"""The summary table (rich) and the JSON written to bench/results/chaos-<seed>.json."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.chaos.adversary_log import AdversaryLog
from bench.chaos.checks import CheckResults
from bench.chaos.faults import FaultWindow
from bench.chaos.workload import BookingRecord

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"
MAX_LISTED = 15


@dataclass(frozen=True, kw_only=True)
class RunSummary:
    seed: int
    command: str
    bookings: list[BookingRecord]
    windows: list[FaultWindow]
    checks: CheckResults
    quiescence_seconds: float | None
    workload_seconds: float
    started: float  # monotonic time the workload began; JSON times are relative to it
    unplanned_exits: Counter[str]
    api_statuses: Counter[str]
    adversary: AdversaryLog | None = None
    adversary_share: float = 0.0
    apps: tuple[str, ...] = ()  # every replica the stack ran
    front_requests: int = 0  # requests the reverse proxy passed to the API replicas


def render(summary: RunSummary, console: Console) -> None:
    faults = Table(title=f"Faults injected (seed {summary.seed})")
    faults.add_column("kind")
    faults.add_column("count", justify="right")
    faults.add_column("not injected", justify="right")
    by_kind: Counter[str] = Counter(w.kind.value for w in summary.windows)
    failed: Counter[str] = Counter(w.kind.value for w in summary.windows if not w.ok)
    for kind, count in sorted(by_kind.items()):
        faults.add_row(kind, str(count), str(failed[kind]))
    faults.add_row("total", str(sum(by_kind.values())), str(sum(failed.values())), style="bold")
    console.print(faults)
    _render_recoveries(summary, console)

    states = Table(title="Bookings by final state")
    states.add_column("state (Postgres; orphans: chain)")
    states.add_column("count", justify="right")
    for state, count in sorted(summary.checks.final_states.items()):
        states.add_row(state, str(count))
    kinds: Counter[str] = Counter(r.kind.value for r in summary.bookings)
    errors: Counter[str] = Counter(r.kind.value for r in summary.bookings if r.error)
    states.add_row("", "")
    for kind, count in sorted(kinds.items()):
        states.add_row(f"workload: {kind}", f"{count} ({errors[kind]} client flows cut short)")
    console.print(states)

    _render_attacks(summary, console)

    checks = Table(title="Checks")
    checks.add_column("check")
    checks.add_column("violations", justify="right")
    for name, problems in summary.checks.violations.items():
        checks.add_row(name, str(len(problems)), style="red" if problems else "green")
    checks.add_row("total", str(summary.checks.total), style="bold")
    console.print(checks)
    for name, problems in summary.checks.violations.items():
        if len(problems) > MAX_LISTED:
            # Same problem at many times: one line per kind ("... at +12.3s" stripped).
            kinds = Counter(p.rsplit(" at +", 1)[0] for p in problems)
            for kind, count in kinds.most_common(MAX_LISTED):
                console.print(f"  [red]{name}[/red]: {count} x {kind}")
            continue
        for problem in problems:
            console.print(f"  [red]{name}[/red]: {problem}")
    quiet = (
        f"{summary.quiescence_seconds:.1f}s"
        if summary.quiescence_seconds is not None
        else "NOT REACHED"
    )
    console.print(
        f"workload {summary.workload_seconds:.1f}s; time to quiescence after it: {quiet}; "
        f"API answers {dict(summary.api_statuses)}; "
        f"unplanned app exits (restarted) {dict(summary.unplanned_exits) or 0}"
    )
    console.print(_latency_line(summary))
    for note in summary.checks.notes:
        console.print(f"note: {note}")
    console.print("CHAOS PASSED" if passed(summary) else "CHAOS FAILED", style="bold")


def _render_recoveries(summary: RunSummary, console: Console) -> None:
    table = Table(
        title="Time to healthy after each fault (every replica ready, listener caught up)"
    )
    for column in ("at", "fault", "lasted", "healthy after", "detail"):
        table.add_column(column, justify="left" if column in ("fault", "detail") else "right")
    for w in summary.windows:
        table.add_row(
            f"+{w.start - summary.started:.0f}s",
            w.kind.value,
            f"{w.end - w.start:.1f}s",
            "NOT REACHED" if w.recovery_seconds is None else f"{w.recovery_seconds:.1f}s",
            w.detail,
        )
    console.print(table)


# (wanted, done) counters of `AdversaryLog.by_attack`, one column each.
ATTACK_COLUMNS = (
    ("requests to refuse", "refused"),
    ("transactions to revert", "reverted"),
    ("victim actions", "victim actions ok"),
)


def _render_attacks(summary: RunSummary, console: Console) -> None:
    if summary.adversary is None or not summary.adversary.refusals:
        return
    table = Table(title=f"Attacks ({summary.adversary_share:.0%} of the bookings)")
    table.add_column("attack", no_wrap=True)
    table.add_column("requests refused", justify="right")
    table.add_column("txs reverted", justify="right")
    table.add_column("victim steps ok", justify="right")
    for attack, row in sorted(summary.adversary.by_attack().items()):
        table.add_row(
            attack.removeprefix("attack_"),
            *(f"{row[done]}/{row[wanted]}" for wanted, done in ATTACK_COLUMNS),
        )
    console.print(table)


def _latency_line(summary: RunSummary) -> str:
    figures = summary.checks.latency
    if not figures.get("requests"):
        return "honest requests: none answered"
    return (
        f"honest requests (attack share {summary.adversary_share:g}): {figures['requests']:.0f},"
        f" p50 {figures['p50_s'] * 1000:.0f} ms, p99 {figures['p99_s'] * 1000:.0f} ms,"
        f" max {figures['max_s'] * 1000:.0f} ms; outside fault windows"
        f" {figures['requests_outside_faults']:.0f},"
        f" p99 {figures.get('p99_outside_faults_s', 0.0) * 1000:.0f} ms"
    )


def passed(summary: RunSummary) -> bool:
    return summary.checks.total == 0 and summary.quiescence_seconds is not None


def to_json(summary: RunSummary) -> dict[str, Any]:
    return {
        "seed": summary.seed,
        "command": summary.command,
        "passed": passed(summary),
        "workload_seconds": round(summary.workload_seconds, 1),
        "quiescence_seconds": (
            round(summary.quiescence_seconds, 1) if summary.quiescence_seconds is not None else None
        ),
        "faults": [
            {
                "kind": w.kind.value,
                "start": round(w.start - summary.started, 1),
                "seconds": round(w.end - w.start, 1),
                "ok": w.ok,
                "detail": w.detail,
                "recovery_seconds": w.recovery_seconds,
                "problems": w.problems,
            }
            for w in summary.windows
        ],
        "final_states": dict(summary.checks.final_states),
        "violations": summary.checks.violations,
        "notes": summary.checks.notes,
        "api_statuses": dict(summary.api_statuses),
        "unplanned_exits": dict(summary.unplanned_exits),
        "apps": list(summary.apps),
        "front_requests": summary.front_requests,
        "adversary_share": summary.adversary_share,
        "honest_latency": summary.checks.latency,
        "attacks": _attacks_json(summary.adversary),
        "bookings": [
            {
                "kind": r.kind.value,
                "booking_id": r.booking_id,
                "chain_booking_id": r.chain_booking_id,
                "payment_tx": r.payment_tx,
                "error": r.error,
            }
            for r in summary.bookings
        ],
    }


def _attacks_json(log: AdversaryLog | None) -> dict[str, Any]:
    if log is None:
        return {}
    return {
        "by_attack": {attack: dict(row) for attack, row in log.by_attack().items()},
        "refusals": Counter(f"{r.action}: {r.status}" for r in log.refusals),
        "transactions": [
            {"action": t.action, "error": t.error, "expected": t.expected_error, "tx": t.tx_hash}
            for t in log.reverts
        ],
        "budget_burns": [asdict(b) for b in log.burns],
        "victims": len(log.expectations),
    }


def write_json(summary: RunSummary, directory: Path = RESULTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"chaos-{summary.seed}.json"
    path.write_text(json.dumps(to_json(summary), indent=2) + "\n", encoding="utf-8")
    return path
