"""EIP-1559 fee quotes and the basis-point arithmetic of replacements and gas headroom."""

from __future__ import annotations

from dataclasses import dataclass

from chain.basis_points import bps_of

# Nodes (geth, reth, anvil) refuse a same-nonce replacement unless both fees rise >= 10 %.
MIN_REPLACEMENT_BUMP_BPS = 1_000


@dataclass(frozen=True, kw_only=True, slots=True)
class FeeQuote:
    """EIP-1559 fee caps for the next block, in wei."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int


def bump(value: int, bps: int) -> int:
    """``value`` raised by ``bps`` basis points, and by at least 1 (a replacement must rise)."""
    return value + bps_of(value, bps) + 1
