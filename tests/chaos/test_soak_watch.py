"""The soak's arithmetic: RSS slope per hour over a process's longest life, and faults spread
evenly over a soak."""

from __future__ import annotations

import itertools
import random

import pytest

from bench.chaos.config import ChaosConfig
from bench.chaos.faults import plan_faults
from bench.chaos.soak import ProcessSample, Sample, longest_life, slope_per_hour


def _sample(minute: float, pid: int, rss: float) -> Sample:
    return Sample(
        minute=minute,
        processes={"worker": ProcessSample(pid=pid, rss_mb=rss, connections=3)},
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
