"""CPU per lifecycle: what the bench counts as the system's cost."""

from __future__ import annotations

import time

import psutil
import pytest

from bench.cpu import LOAD_GENERATOR, CpuUse, machine_busy, machine_busy_seconds


def test_system_cpu_per_item_counts_every_process_but_the_load_generator():
    before = {"worker": 1.0, LOAD_GENERATOR: 1.0}
    after = {"worker": 2.0, "temporal": 0.5, LOAD_GENERATOR: 3.0}
    use = CpuUse.between(before, after, wall_seconds=10.0)
    assert use.system_ms(10) == pytest.approx(150.0)  # (1.0 + 0.5) s over 10 lifecycles
    assert use.per_item_ms(10)[LOAD_GENERATOR] == pytest.approx(200.0)


def test_machine_busy_counts_this_process_burning_cpu():
    spent_before, machine_before = time.process_time(), machine_busy_seconds()
    began = time.perf_counter()
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    wall = time.perf_counter() - began
    spent, machine_after = time.process_time() - spent_before, machine_busy_seconds()
    # The whole machine used at least what this process did (less the kernel's tick rounding).
    assert machine_after - machine_before >= spent - 0.05
    share = machine_busy(machine_before, machine_after, wall)
    assert 0 < share <= 1.05
    assert share >= (spent - 0.05) / (wall * (psutil.cpu_count() or 1))
