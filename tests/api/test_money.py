"""Decimal strings <-> integer base units: exact both ways, strict about the format."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.money import AmountError, format_units, parse_amount


@given(st.integers(min_value=0, max_value=10**30))
def test_units_round_trip_through_the_decimal_string(units: int) -> None:
    assert parse_amount(format_units(units)) == units


@given(
    st.integers(min_value=0, max_value=10**12),
    st.text(alphabet="0123456789", min_size=0, max_size=6),
)
def test_parsing_matches_exact_decimal_arithmetic(whole: int, frac: str) -> None:
    text = f"{whole}.{frac}" if frac else str(whole)
    expected = whole * 10**6 + (int(frac.ljust(6, "0")) if frac else 0)
    assert parse_amount(text) == expected


@pytest.mark.parametrize(
    ("text", "units"),
    [("0.000001", 1), ("1", 1_000_000), ("12.5", 12_500_000), ("007.10", 7_100_000)],
)
def test_known_values(text: str, units: int) -> None:
    assert parse_amount(text) == units


@pytest.mark.parametrize(
    "text",
    ["", "1.0000001", "-1", "+1", "1e6", "1,5", " 1", "1.", ".5", "0x10", "NaN", "Infinity", "١"],
)
def test_refuses_anything_but_a_plain_decimal(text: str) -> None:
    with pytest.raises(AmountError):
        parse_amount(text)


def test_format_is_shortest_exact() -> None:
    assert format_units(12_500_000) == "12.5"
    assert format_units(1) == "0.000001"
    assert format_units(3_000_000) == "3"


def test_format_refuses_floats_and_bools() -> None:
    with pytest.raises(TypeError):
        format_units(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_units(True)
