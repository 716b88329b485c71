"""`make soak`: the chaos stack under steady traffic for an hour, watched once a minute.

The chaos run does the work (its workload spread evenly over the soak at a fixed rate, its faults
every few minutes, its checks at the end); this module adds the watch: every sample records, per
process, resident memory (RSS, and PSS: shared pages divided among the processes sharing them)
and open TCP connections (the whole process tree: Postgres's backends, the dev server's children),
the Temporal dev server's SQLite file, the Postgres database and the listener's lag (chain head
minus its checkpoint). At the end: each process's memory slope in MB/hour, fitted over its
longest life without a restart (a kill -9 starts it from scratch, which is not a leak), once over
the whole life and once over its second half, and the lag over time.

Why PSS: RSS summed over a process tree counts every shared page once per process, so Postgres's
shared buffers count once per backend and its "growth" follows the number of connections. Why the
second half: a cache filling up to its bound (the worker's workflow cache, Temporal's) slopes in
the first half and goes flat; a leak keeps its slope.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import structlog
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from bench.chaos.stack import ChaosStack
from chain.client import ChainClient
from db.engine import make_engine

log = structlog.get_logger(__name__)

MB = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class ProcessSample:
    pid: int
    rss_mb: float
    connections: int
    pss_mb: float | None = None  # None where smaps is unreadable

    @property
    def memory_mb(self) -> float:
        """The figure the slopes are fitted on: PSS when known, else RSS."""
        return self.rss_mb if self.pss_mb is None else self.pss_mb


@dataclass(frozen=True, kw_only=True)
class Sample:
    minute: float  # since the watch began
    processes: dict[str, ProcessSample]
    temporal_db_mb: float | None
    postgres_db_mb: float | None
    postgres_connections: int | None
    head: int | None
    checkpoint: int | None

    @property
    def lag(self) -> int | None:
        if self.head is None or self.checkpoint is None:
            return None
        return max(0, self.head - self.checkpoint)


def process_sample(pid: int) -> ProcessSample | None:
    """RSS, PSS and TCP connections of `pid` and its descendants (None if it is gone)."""
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    rss = pss = connections = 0
    pss_known = True
    for process in tree:
        with contextlib.suppress(psutil.Error):
            connections += len(process.net_connections(kind="tcp"))
        try:
            # One read of smaps gives both (it holds the RSS too).
            memory = process.memory_full_info()
            rss += memory.rss
            pss += memory.pss
        except psutil.AccessDenied:
            pss_known = False
            with contextlib.suppress(psutil.Error):
                rss += process.memory_info().rss
        except psutil.Error:
            continue  # gone since the tree was listed
    return ProcessSample(
        pid=pid,
        rss_mb=round(rss / MB, 1),
        connections=connections,
        pss_mb=round(pss / MB, 1) if pss_known else None,
    )


def file_mb(path: Path | None) -> float | None:
    """A SQLite database's size, its write-ahead log included."""
    if path is None or not path.exists():
        return None
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return round(sum(f.stat().st_size for f in files if f.exists()) / MB, 2)


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (minute, value) points, per hour; None below three points."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    return slope * 60.0


def second_half(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points from the middle minute of their span on."""
    if not points:
        return []
    middle = (points[0][0] + points[-1][0]) / 2
    return [(x, y) for x, y in points if x >= middle]


def longest_life(samples: list[Sample], name: str) -> list[tuple[float, float]]:
    """The (minute, memory) points of the process's longest run of samples under one pid."""
    best: list[tuple[float, float]] = []
    current: list[tuple[float, float]] = []
    pid: int | None = None
    for sample in samples:
        seen = sample.processes.get(name)
        if seen is None:
            pid, current = None, []
            continue
        if seen.pid != pid:
            pid, current = seen.pid, []
        current.append((sample.minute, seen.memory_mb))
        if len(current) > len(best):
            best = list(current)
    return best


@dataclass
class SoakWatch:
    """Samples the stack every `every` seconds while the chaos run goes on."""

    every: float = 60.0
    samples: list[Sample] = field(default_factory=list)
    _started: float = field(default_factory=time.monotonic)

    async def run(self, stack: ChaosStack, chain: ChainClient) -> None:
        self._started = time.monotonic()
        while True:
            try:
                self.samples.append(await self.sample(stack, chain))
            except Exception as exc:  # a server restarting: the next minute will tell
                log.warning("soak.sample_failed", error=str(exc))
            await asyncio.sleep(self.every)

    async def sample(self, stack: ChaosStack, chain: ChainClient) -> Sample:
        pids = stack.pids()
        processes = {
            name: seen
            for name, pid in pids.items()
            if pid is not None and (seen := await asyncio.to_thread(process_sample, pid))
        }
        head: int | None = None
        with contextlib.suppress(Exception):
            head = await chain.block_number()
        db_mb = checkpoint = connections = None
        engine = make_engine(stack.database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                size = await conn.scalar(text("SELECT pg_database_size(current_database())"))
                db_mb = round(int(size) / MB, 2)
                checkpoint = await conn.scalar(
                    text("SELECT max(last_block_number) FROM chain_cursor")
                )
                connections = await conn.scalar(
                    text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
                )
        except Exception as exc:  # Postgres down or partitioned: the sample says so
            log.warning("soak.postgres_unreadable", error=str(exc))
        finally:
            await engine.dispose()
        return Sample(
            minute=round((time.monotonic() - self._started) / 60.0, 2),
            processes=processes,
            temporal_db_mb=file_mb(stack.temporal_db_file),
            postgres_db_mb=db_mb,
            postgres_connections=int(connections) if connections is not None else None,
            head=head,
            checkpoint=int(checkpoint) if checkpoint is not None else None,
        )

    def _names(self) -> list[str]:
        return sorted({name for s in self.samples for name in s.processes})

    def memory_slopes(self) -> dict[str, float | None]:
        """MB/hour over each process's longest life."""
        return {
            name: _rounded(slope_per_hour(longest_life(self.samples, name)))
            for name in self._names()
        }

    def settled_slopes(self) -> dict[str, float | None]:
        """MB/hour over the second half of each process's longest life: the leak figure."""
        return {
            name: _rounded(slope_per_hour(second_half(longest_life(self.samples, name))))
            for name in self._names()
        }

    def lag_series(self) -> list[tuple[float, int | None]]:
        return [(s.minute, s.lag) for s in self.samples]

    def to_json(self) -> dict[str, Any]:
        return {
            "every_seconds": self.every,
            "memory": "PSS where readable, else RSS",
            "memory_slope_mb_per_hour": self.memory_slopes(),
            "memory_slope_second_half_mb_per_hour": self.settled_slopes(),
            "temporal_db_growth_mb_per_hour": _rounded(
                slope_per_hour(
                    [
                        (s.minute, s.temporal_db_mb)
                        for s in self.samples
                        if s.temporal_db_mb is not None
                    ]
                )
            ),
            "postgres_db_growth_mb_per_hour": _rounded(
                slope_per_hour(
                    [
                        (s.minute, s.postgres_db_mb)
                        for s in self.samples
                        if s.postgres_db_mb is not None
                    ]
                )
            ),
            "lag": self.lag_series(),
            "samples": [asdict(s) | {"lag": s.lag} for s in self.samples],
        }


def _rounded(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def render_soak(watch: SoakWatch, console: Console) -> None:
    samples = watch.samples
    if not samples:
        console.print("soak: no sample taken")
        return
    first, last = samples[0], samples[-1]
    table = Table(title=f"Processes over {last.minute:.0f} min ({len(samples)} samples)")
    columns = (
        "process",
        "RSS first MB",
        "RSS last MB",
        "PSS first MB",
        "PSS last MB",
        "slope MB/h",
        "2nd half MB/h",
        "conns last",
        "pids",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "process" else "right")
    settled = watch.settled_slopes()
    for name, slope in watch.memory_slopes().items():
        seen = [s.processes[name] for s in samples if name in s.processes]
        table.add_row(
            name,
            f"{seen[0].rss_mb:.0f}",
            f"{seen[-1].rss_mb:.0f}",
            _mb(seen[0].pss_mb),
            _mb(seen[-1].pss_mb),
            _signed(slope),
            _signed(settled[name]),
            str(seen[-1].connections),
            str(len({p.pid for p in seen})),
        )
    console.print(table)
    console.print("slopes are fitted on PSS (RSS where PSS is unreadable), per process tree")
    console.print(
        f"Temporal SQLite {first.temporal_db_mb} -> {last.temporal_db_mb} MB; Postgres"
        f" {first.postgres_db_mb} -> {last.postgres_db_mb} MB"
        f" ({last.postgres_connections} connections at the end)"
    )
    lags = " ".join(
        f"{minute:.0f}:{'?' if lag is None else lag}" for minute, lag in watch.lag_series()
    )
    console.print(f"listener lag, blocks (minute:lag): {lags}")


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}"


def write_soak_json(watch: SoakWatch, chaos: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"soak": watch.to_json(), "chaos": chaos}, indent=2) + "\n", encoding="utf-8"
    )
    return path
