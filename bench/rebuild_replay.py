"""How fast `bookme rebuild` reads what workflows wrote: replays per second of recorded histories.

``python -m bench.rebuild_replay [--rounds N]`` replays every history of tests/workflows/histories
N times through ``capture_all`` (one sandboxed replayer, as the command runs it), prints the
figures and writes bench/results/rebuild-<time>.json. The Postgres writes that follow are the
worker's own, measured by the main bench.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import WorkflowHistory

from bench.results import RESULTS_DIR
from bookme.ops.rebuild_capture import capture_all

HISTORIES = Path(__file__).resolve().parents[1] / "tests" / "workflows" / "histories"


async def measure(rounds: int) -> dict[str, float]:
    histories = [
        WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
        for path in sorted(HISTORIES.glob("*.json"))
    ]

    async def feed() -> AsyncIterator[WorkflowHistory]:
        for _ in range(rounds):
            for history in histories:
                yield history

    replayed = writes = failures = 0
    started = time.perf_counter()
    async for _, captured in capture_all(feed()):
        replayed += 1
        writes += len(captured.writes)
        failures += captured.replay_failure is not None
    seconds = time.perf_counter() - started
    return {
        "histories": replayed,
        "writes": writes,
        "replay_failures": failures,
        "seconds": round(seconds, 2),
        "ms_per_history": round(seconds / replayed * 1000, 1),
        "load_average_1m": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    figures = asyncio.run(measure(parser.parse_args().rounds))
    print(  # noqa: T201 - a bench prints its figures
        f"rebuild replay: {figures['histories']} histories, {figures['writes']} writes in"
        f" {figures['seconds']} s ({figures['ms_per_history']} ms each,"
        f" load {figures['load_average_1m']:.1f}), {figures['replay_failures']} replay failures"
    )
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"rebuild-{stamp}.json"
    path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
