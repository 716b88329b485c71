"""The chaos plan: the attack share is honoured, spread over the run, and covers every kind."""

from __future__ import annotations

import itertools
import random

from bench.chaos.config import ChaosConfig
from bench.chaos.workload import ATTACKS, MIX, plan_bookings


def test_a_share_of_the_bookings_are_attacks_spread_over_the_run_each_kind_once() -> None:
    plan = plan_bookings(ChaosConfig(seed=7, bookings=40, adversary_share=0.25), random.Random(7))
    attacks = [r for r in plan if r.kind in ATTACKS]
    assert len(attacks) == 10
    assert {r.kind for r in attacks} == set(ATTACKS)
    assert {r.kind for r in plan if r.kind not in ATTACKS} == set(MIX)
    # Spread: never two attacks in a row at a quarter, and some in each half of the run.
    indexes = [r.index for r in attacks]
    assert all(b - a >= 4 for a, b in itertools.pairwise(indexes))
    assert min(indexes) < 20 <= max(indexes)


def test_an_honest_only_run_plans_no_attack() -> None:
    plan = plan_bookings(ChaosConfig(seed=7, bookings=40, adversary_share=0.0), random.Random(7))
    assert not [r for r in plan if r.kind in ATTACKS]
