"""The soak's arithmetic: memory slope per hour over a process's longest life and over its second
half, PSS over a process tree, and faults spread evenly over a soak."""

from __future__ import annotations

import itertools
import random
import subprocess
import sys

import psutil
import pytest

from bench.chaos.config import ChaosConfig
from bench.chaos.faults import plan_faults
from bench.chaos.soak import (
    ProcessSample,
    Sample,
    SoakWatch,
    longest_life,
    process_sample,
    slope_per_hour,
)


def _sample(minute: float, pid: int, rss: float, pss: float | None = None) -> Sample:
    return Sample(
        minute=minute,
        processes={"worker": ProcessSample(pid=pid, rss_mb=rss, connections=3, pss_mb=pss)},
        temporal_db_mb=None,
        postgres_db_mb=None,
        postgres_connections=None,
        head=10,
        checkpoint=8,
    )


def test_slope_is_per_hour_and_needs_three_points() -> None:
    assert slope_per_hour([(0, 100.0), (1, 101.0), (2, 102.0)]) == pytest.approx(60.0)
    assert slope_per_hour([(0, 100.0), (1, 101.0)]) is None


def test_a_restart_is_not_a_leak_the_longest_life_is_fitted() -> None:
    # pid 1 grows 1 MB a minute for 4 samples, is killed, pid 2 starts low and stays flat longer.
    samples = [_sample(m, 1, 100.0 + m) for m in range(4)]
    samples += [_sample(m, 2, 80.0) for m in range(4, 10)]
    life = longest_life(samples, "worker")
    assert [minute for minute, _ in life] == list(range(4, 10))
    assert slope_per_hour(life) == pytest.approx(0.0)
    assert samples[0].lag == 2


def test_soak_faults_come_at_even_intervals() -> None:
    config = ChaosConfig(seed=3, faults=15, duration=3600.0, even_faults=True)
    times = [f.at for f in plan_faults(config, random.Random(3))]
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(times)}
    assert len(times) >= 15
    assert gaps == {round(3600.0 / (len(times) + 1), 6)}


def test_a_cache_filling_to_its_bound_is_not_a_leak_in_the_second_half() -> None:
    # 60 minutes: +2 MB a minute until minute 20, then flat (a bounded cache, full).
    filling = [_sample(m, 1, 100.0 + 2 * min(m, 20)) for m in range(0, 61, 2)]
    watch = SoakWatch(samples=filling)
    slope = watch.memory_slopes()["worker"]
    assert slope is not None
    assert slope > 20.0  # the whole life shows the filling
    assert watch.settled_slopes()["worker"] == pytest.approx(0.0)
    # A leak keeps its slope in the second half.
    leaking = SoakWatch(samples=[_sample(m, 1, 100.0 + m) for m in range(0, 61, 2)])
    assert leaking.settled_slopes()["worker"] == pytest.approx(60.0)


def test_slopes_follow_pss_where_it_is_known() -> None:
    # RSS climbs (shared pages counted once per backend), PSS stays flat.
    watch = SoakWatch(samples=[_sample(m, 1, 100.0 + 10 * m, pss=50.0) for m in range(6)])
    assert watch.memory_slopes()["worker"] == pytest.approx(0.0)


def test_pss_counts_pages_shared_by_a_process_tree_once() -> None:
    # A parent touches 64 MB and forks four children that share those pages without writing
    # them: RSS summed over the tree counts them five times, PSS once.
    script = (
        "import os, sys, time\n"
        "block = bytearray(64 * 1024 * 1024)\n"
        "for i in range(0, len(block), 4096): block[i] = 1\n"
        "for _ in range(4):\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(60); os._exit(0)\n"
        "print('ready', flush=True); time.sleep(60)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    ) as parent:
        try:
            assert parent.stdout is not None
            assert parent.stdout.readline().strip() == "ready"
            seen = process_sample(parent.pid)
        finally:
            for child in psutil.Process(parent.pid).children():
                child.kill()
            parent.kill()
    assert seen is not None
    assert seen.pss_mb is not None
    assert seen.rss_mb > 5 * 60
    assert seen.pss_mb < 2 * 64 + 40
