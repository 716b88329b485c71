"""One share function for every basis-point computation, rounding down as the escrow does."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chain.basis_points import BPS_DENOMINATOR, bps_of
from chain.fees import bump

amounts = st.integers(0, 2**128)
rates = st.integers(0, BPS_DENOMINATOR)


def test_a_share_rounds_down_like_math_mul_div():
    assert bps_of(999, 1_000) == 99  # 99.9
    assert bps_of(10_000_000, 500) == 500_000
    assert bps_of(1, 9_999) == 0
    assert bps_of(7, BPS_DENOMINATOR) == 7


@given(amounts, rates)
def test_the_legs_of_a_split_never_exceed_the_amount(amount, bps):
    share = bps_of(amount, bps)
    assert 0 <= share <= amount
    assert share * BPS_DENOMINATOR <= amount * bps < (share + 1) * BPS_DENOMINATOR


@given(amounts, st.integers(0, 5 * BPS_DENOMINATOR))
def test_a_bump_is_the_value_plus_its_share_plus_one(value, bps):
    # The formula the sender used before the share function existed.
    assert bump(value, bps) == value * (BPS_DENOMINATOR + bps) // BPS_DENOMINATOR + 1
