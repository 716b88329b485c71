"""What the demo prints: live progress lines, then the bookings and balances tables."""

from __future__ import annotations

import time
from typing import TextIO

from bookme.demo.runs import Party, Run
from bookme.demo.target import Target


class Progress:
    """Compact live lines: elapsed time, booking, what changed."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.started = time.monotonic()

    def say(self, key: str, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.out.write(f"  {elapsed:6.1f}s  {key:<16}{text}\n")
        self.out.flush()


def render(
    target: Target,
    runs: list[Run],
    parties: tuple[Party, ...],
    before: dict[str, int],
    after: dict[str, int],
    expected: dict[str, int],
) -> tuple[str, bool]:
    """The final tables and whether everything matched."""
    lines = ["", "Bookings", f"  {'booking':<16}{'expected':<11}{'final':<18}{'ok':<4}path"]
    for run in runs:
        lines += _booking_lines(target, run)
    lines += ["", "USDC balances (base units, 6 decimals)"]
    lines.append(
        f"  {'party':<9}{'address':<44}{'before':>14}{'after':>14}{'change':>13}"
        f"{'expected':>13}  ok"
    )
    balances_ok = True
    for p in parties:
        change = after[p.address] - before[p.address]
        ok = change == expected[p.address]
        balances_ok &= ok
        lines.append(
            f"  {p.label:<9}{p.address:<44}{before[p.address]:>14}{after[p.address]:>14}"
            f"{change:>+13}{expected[p.address]:>+13}  {'ok' if ok else 'BAD'}"
        )
    all_ok = balances_ok and all(r.ok for r in runs)
    lines += ["", "DEMO PASSED" if all_ok else "DEMO FAILED"]
    return "\n".join(lines), all_ok


def _booking_lines(target: Target, r: Run) -> list[str]:
    """One booking's row, then its error, note, transactions and Temporal UI link."""
    lines = [
        f"  {r.key:<16}{r.expected:<11}{(r.status or '-'):<18}{'ok' if r.ok else 'BAD':<4}"
        + " > ".join(r.history)
    ]
    if r.error:
        lines.append(f"      error: {r.error}")
    if r.note:
        lines.append(f"      note: {r.note}")
    for name, tx in r.txs.items():
        lines.append(f"      {name + ' tx':<16}{tx}")
    if r.workflow_id:
        lines.append(
            f"      {'Temporal UI':<16}{target.urls.temporal_ui_url}/namespaces/"
            f"{target.namespace}/workflows/{r.workflow_id}"
        )
    return lines
