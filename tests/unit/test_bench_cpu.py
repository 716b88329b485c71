"""The bench's CPU accounting: deltas by app, per item, and how busy the cores were."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from bench.cpu import CpuUse, cpu_seconds


def test_cpu_use_is_the_difference_per_item_largest_first() -> None:
    use = CpuUse.between(
        {"worker": 1.0, "api": 2.0},
        {"worker": 3.0, "api": 2.5, "postgres": 1.0},
        wall_seconds=2.0,
    )
    assert use.seconds == {"api": 0.5, "postgres": 1.0, "worker": 2.0}
    assert list(use.per_item_ms(10)) == ["worker", "postgres", "api"]
    assert use.per_item_ms(10)["worker"] == 200.0
    assert use.busy == 3.5 / (2.0 * (psutil.cpu_count() or 1))
    assert use.text(10) == "worker 200, postgres 100, api 50"


def test_children_are_counted_under_their_app_name() -> None:
    spin = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
    child = subprocess.Popen([sys.executable, "-c", spin + "time.sleep(30)"])
    try:
        seconds: dict[str, float] = {}
        # The kernel accounts user and system time in clock ticks (10 ms), each rounded down:
        # 0.3 s of process_time may read 0.29 s.
        burnt = 0.3 - 0.02
        for _ in range(200):  # up to ~10 s for the child to burn its 0.3 s
            seconds = cpu_seconds({"worker": child.pid})
            if seconds.get("worker", 0.0) >= burnt:
                break
            time.sleep(0.05)
        assert seconds["worker"] >= burnt
        assert seconds["bench"] > 0
    finally:
        child.kill()
        child.wait()
