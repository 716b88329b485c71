"""CPU seconds per process of the bench's own tree, to show where a section's time goes.

Every server and app the bench runs is a descendant of its process, so one walk of the tree
finds them all. Each is named by the app it belongs to (its top-level ancestor below the bench:
the worker's or Postgres's own children count for it), the bench process itself as "bench".
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import psutil

# The bench process itself: it drives the load, it is not what a booking costs.
LOAD_GENERATOR = "bench"
# Command-line fragments that name a server process.
SERVERS = (("anvil", "anvil"), ("postgres", "postgres"), ("temporal", "temporal"))


def _label(process: psutil.Process, apps: Mapping[int, str]) -> str:
    if process.pid in apps:
        return apps[process.pid]
    try:
        line = " ".join(process.cmdline()).lower()
    except psutil.Error:
        return "other"
    for fragment, name in SERVERS:
        if fragment in line:
            return name
    return "other"


def cpu_seconds(apps: Mapping[str, int]) -> dict[str, float]:
    """User + system CPU seconds so far, by app ("worker", "postgres", "bench", ...)."""
    by_pid = {pid: name for name, pid in apps.items()}
    me = psutil.Process(os.getpid())
    totals: dict[str, float] = defaultdict(float)
    own = me.cpu_times()
    totals[LOAD_GENERATOR] += own.user + own.system
    for top in me.children():
        label = _label(top, by_pid)
        for process in (top, *_descendants(top)):
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue  # it ended between the walk and the read
            totals[label] += times.user + times.system
    return dict(totals)


def machine_busy_seconds() -> float:
    """CPU seconds every process on the machine has used, all cores (not idle, not waiting for
    I/O): beside `cpu_seconds`, it shows when something outside the bench shares the cores."""
    times = psutil.cpu_times()._asdict()
    # Linux counts guest time inside user time as well.
    left_out = ("idle", "iowait", "guest", "guest_nice")
    return float(sum(seconds for name, seconds in times.items() if name not in left_out))


def machine_busy(before: float, after: float, wall_seconds: float) -> float:
    """Share of all the machine's cores busy between two `machine_busy_seconds` readings."""
    cores = psutil.cpu_count() or 1
    return (after - before) / (wall_seconds * cores) if wall_seconds else 0.0


def _descendants(process: psutil.Process) -> list[psutil.Process]:
    try:
        return list(process.children(recursive=True))
    except psutil.Error:
        return []


@dataclass(frozen=True, kw_only=True)
class CpuUse:
    """CPU spent between two readings: seconds by app, and how busy the machine's cores were."""

    seconds: dict[str, float]
    wall_seconds: float

    @classmethod
    def between(
        cls, before: Mapping[str, float], after: Mapping[str, float], wall_seconds: float
    ) -> CpuUse:
        spent = {
            name: max(0.0, after.get(name, 0.0) - before.get(name, 0.0))
            for name in sorted(after.keys() | before.keys())
        }
        return cls(seconds=spent, wall_seconds=wall_seconds)

    @property
    def busy(self) -> float:
        """Share of all cores in use, 0..1."""
        cores = psutil.cpu_count() or 1
        return sum(self.seconds.values()) / (self.wall_seconds * cores) if self.wall_seconds else 0

    def per_item_ms(self, items: int) -> dict[str, float]:
        """CPU milliseconds per item (a lifecycle, an event), largest first."""
        ranked = sorted(self.seconds.items(), key=lambda kv: kv[1], reverse=True)
        return {name: 1000 * seconds / max(1, items) for name, seconds in ranked}

    def system_ms(self, items: int) -> float:
        """CPU milliseconds per item of every process but the bench's own (the load generator)."""
        return sum(ms for name, ms in self.per_item_ms(items).items() if name != LOAD_GENERATOR)

    def text(self, items: int) -> str:
        shares = self.per_item_ms(items)
        return ", ".join(f"{name} {ms:.0f}" for name, ms in shares.items() if ms >= 0.5)
