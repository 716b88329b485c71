"""CPU per lifecycle: what the bench counts as the system's cost."""

from __future__ import annotations

import pytest

from bench.cpu import LOAD_GENERATOR, CpuUse


def test_system_cpu_per_item_counts_every_process_but_the_load_generator():
    before = {"worker": 1.0, LOAD_GENERATOR: 1.0}
    after = {"worker": 2.0, "temporal": 0.5, LOAD_GENERATOR: 3.0}
    use = CpuUse.between(before, after, wall_seconds=10.0)
    assert use.system_ms(10) == pytest.approx(150.0)  # (1.0 + 0.5) s over 10 lifecycles
    assert use.per_item_ms(10)[LOAD_GENERATOR] == pytest.approx(200.0)
