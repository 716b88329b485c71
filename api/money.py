"""USDC amounts at the edge: decimal strings <-> integer base units, exactly (never floats)."""

from __future__ import annotations

import re
from decimal import Decimal

USDC_DECIMALS = 6
UNITS_PER_USDC: int = 10**USDC_DECIMALS
# Digits, optionally a point and 1..6 decimals: no sign, exponent, spaces or grouping.
_AMOUNT_RE = re.compile(r"^(?P<whole>[0-9]+)(?:\.(?P<frac>[0-9]{1,6}))?$")
_MAX_WHOLE_DIGITS = 60  # far beyond any cap; bounds the work a hostile string can cause


class AmountError(ValueError):
    """An amount string that is not a plain decimal with at most 6 decimals."""


def parse_amount(text: str) -> int:
    """`"12.5"` -> 12_500_000 base units; refuses signs, exponents and a 7th decimal."""
    match = _AMOUNT_RE.match(text)
    if match is None:
        raise AmountError(
            f'amount must be a decimal string with at most {USDC_DECIMALS} decimals, e.g. "12.50"'
        )
    whole: str = match.group("whole")
    if len(whole) > _MAX_WHOLE_DIGITS:
        raise AmountError("amount is too large")
    frac: str = (match.group("frac") or "").ljust(USDC_DECIMALS, "0")
    return int(whole) * UNITS_PER_USDC + int(frac)


def format_units(units: int) -> str:
    """12_500_000 -> `"12.5"`: the shortest exact decimal string (no trailing zeros)."""
    if isinstance(units, bool) or not isinstance(units, int):
        raise TypeError(f"base units must be int, got {type(units).__name__}")
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), UNITS_PER_USDC)
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:0{USDC_DECIMALS}d}".rstrip("0")


def exact_units(whole_usdc: Decimal) -> int | None:
    """Whole USDC (a SQL DECIMAL, e.g. the seed's `bookings.amount`) -> base units, exactly.

    None unless that is a positive integer: 25.5 -> 25_500_000, but 1.2345678 (a 7th decimal),
    0, negatives, NaN and infinities have no base-unit value. Integer arithmetic, no rounding.
    """
    if not whole_usdc.is_finite():
        return None
    sign, digits, exponent = whole_usdc.as_tuple()
    if sign or not isinstance(exponent, int) or len(digits) > _MAX_WHOLE_DIGITS:
        return None
    mantissa = int("".join(map(str, digits)))
    shift = exponent + USDC_DECIMALS
    if shift > _MAX_WHOLE_DIGITS:
        return None
    if shift >= 0:
        units = mantissa * 10**shift
    else:
        units, rest = divmod(mantissa, 10**-shift)
        if rest:
            return None
    return units if units > 0 else None
