"""The chaos plan: the attack share is honoured, spread over the run, and covers every kind."""

from __future__ import annotations

import itertools
import random

from bench.chaos.config import ChaosConfig
from bench.chaos.workload import ATTACKS, MIX, BookingRecord, Kind, plan_bookings, victim_index


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


def test_reorg_victims_get_the_wallets_funded_after_the_plans() -> None:
    # The full run of this session: 44 replay attacks had registered the attacker's own booking
    # in `extra` before the deep reorg's victim came, so the victim got wallet 2044, unfunded
    # (the harness funds the plan's and one per deep reorg): "Insufficient funds for gas".
    planned = 2000
    extra = [
        BookingRecord(index=i, kind=Kind.ADV_REPLAY, amount=1, inviter=False) for i in range(44)
    ]
    assert victim_index(planned, extra) == planned
    extra.append(BookingRecord(index=planned, kind=Kind.REORG_VICTIM, amount=1, inviter=False))
    extra += [
        BookingRecord(index=i, kind=Kind.ADV_REPLAY, amount=1, inviter=False) for i in range(3)
    ]
    assert victim_index(planned, extra) == planned + 1
