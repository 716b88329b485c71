"""EIP-1559 fee quotes and the basis-point arithmetic of replacements and gas headroom."""

from __future__ import annotations

from dataclasses import dataclass

from chain.basis_points import bps_of
from chain.errors import FeeCapExceeded

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


def quote_within_cap(*, base_fee: int, tip: int, cap: int | None) -> FeeQuote:
    """maxFee = 2 x next base fee + tip, never above ``cap``.

    Lowered to the cap while the cap still covers the next base fee plus the tip (the transaction
    is includable now, with less headroom for rising fees); refused above that: a transaction
    that cannot be included at the cap is not signed at all, so no nonce waits behind it.
    """
    max_fee = 2 * base_fee + tip
    if cap is None or max_fee <= cap:
        return FeeQuote(max_fee_per_gas=max_fee, max_priority_fee_per_gas=tip)
    if base_fee + tip > cap:
        raise FeeCapExceeded(
            f"gas price above the operator's cap: next base fee {base_fee} + tip {tip} wei "
            f"> max fee per gas {cap} wei; not sent, retried later",
            needed=base_fee + tip,
            cap=cap,
        )
    return FeeQuote(max_fee_per_gas=cap, max_priority_fee_per_gas=tip)


def replacement_within_cap(
    previous: FeeQuote, quote: FeeQuote, bps: int, cap: int | None
) -> FeeQuote:
    """Fees for a same-nonce replacement: both raised >= ``bps`` over ``previous``, at least the
    current ``quote``; FeeCapExceeded when that passes ``cap`` (the stuck transaction then keeps
    waiting at its fees rather than paying above the cap)."""
    tip = max(quote.max_priority_fee_per_gas, bump(previous.max_priority_fee_per_gas, bps))
    max_fee = max(quote.max_fee_per_gas, bump(previous.max_fee_per_gas, bps), tip)
    if cap is not None and max_fee > cap:
        raise FeeCapExceeded(
            f"a replacement needs max fee per gas {max_fee} wei > the cap {cap} wei",
            needed=max_fee,
            cap=cap,
        )
    return FeeQuote(max_fee_per_gas=max_fee, max_priority_fee_per_gas=tip)
