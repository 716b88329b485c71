"""Basis points: the one denominator and the one share function, as the contract computes them.

A module of its own, importing nothing: the workflows (expected fees, cancellation splits), the
transaction sender (fee bumps, gas headroom) and the demo all compute shares with it, and the
workflow sandbox must not pull web3 in for a division.
"""

from __future__ import annotations

BPS_DENOMINATOR = 10_000


def bps_of(amount: int, bps: int) -> int:
    """``bps`` basis points of ``amount``, rounded down as the escrow's ``Math.mulDiv`` does."""
    return amount * bps // BPS_DENOMINATOR
