"""The operator's max fee cap (chain/fees.py): lowered to the cap while includable, refused above."""

from __future__ import annotations

import pytest

from chain.errors import FeeCapExceeded, TransactionError
from chain.fees import FeeQuote, quote_within_cap, replacement_within_cap

GWEI = 10**9


def test_under_the_cap_the_quote_is_twice_the_base_fee_plus_the_tip() -> None:
    quote = quote_within_cap(base_fee=10 * GWEI, tip=GWEI, cap=100 * GWEI)
    assert quote == FeeQuote(max_fee_per_gas=21 * GWEI, max_priority_fee_per_gas=GWEI)
    assert quote_within_cap(base_fee=10 * GWEI, tip=GWEI, cap=None).max_fee_per_gas == 21 * GWEI


def test_a_cap_that_still_covers_base_fee_and_tip_lowers_the_max_fee_to_it() -> None:
    quote = quote_within_cap(base_fee=10 * GWEI, tip=GWEI, cap=15 * GWEI)
    assert quote == FeeQuote(max_fee_per_gas=15 * GWEI, max_priority_fee_per_gas=GWEI)
    exactly = quote_within_cap(base_fee=10 * GWEI, tip=GWEI, cap=11 * GWEI)
    assert exactly.max_fee_per_gas == 11 * GWEI


def test_a_market_above_the_cap_is_refused_with_both_numbers() -> None:
    with pytest.raises(FeeCapExceeded) as refused:
        quote_within_cap(base_fee=10 * GWEI, tip=GWEI, cap=11 * GWEI - 1)
    assert refused.value.needed == 11 * GWEI
    assert refused.value.cap == 11 * GWEI - 1
    assert "not sent" in str(refused.value)
    # A TransactionError: the send activities let Temporal retry it with backoff.
    assert isinstance(refused.value, TransactionError)
    with pytest.raises(FeeCapExceeded):
        quote_within_cap(base_fee=0, tip=2 * GWEI, cap=GWEI)  # a tip alone above the cap


def test_a_replacement_is_bumped_but_never_past_the_cap() -> None:
    sent = FeeQuote(max_fee_per_gas=20 * GWEI, max_priority_fee_per_gas=GWEI)
    market = FeeQuote(max_fee_per_gas=10 * GWEI, max_priority_fee_per_gas=GWEI)
    bumped = replacement_within_cap(sent, market, 1_250, cap=30 * GWEI)
    assert bumped.max_fee_per_gas == 22_500_000_001
    assert bumped.max_priority_fee_per_gas == 1_125_000_001
    with pytest.raises(FeeCapExceeded):
        replacement_within_cap(sent, market, 1_250, cap=22 * GWEI)
    assert replacement_within_cap(sent, market, 1_250, cap=None) == bumped
