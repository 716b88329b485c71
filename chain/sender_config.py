"""The knobs of a `TransactionSender`: confirmations, gas headroom, fees, replacement, polling."""

from __future__ import annotations

from dataclasses import dataclass

from chain.fees import MIN_REPLACEMENT_BUMP_BPS


@dataclass(frozen=True, kw_only=True, slots=True)
class SenderConfig:
    """Knobs of a `TransactionSender`; defaults suit Base and anvil."""

    # Blocks on top of the one that includes the transaction (0 = mined), as the listener counts
    # them: a block ``n`` is final once ``head - n >= confirmations``.
    confirmations: int = 0
    gas_headroom_bps: int = 2_000
    fee_history_blocks: int = 10
    priority_fee_percentile: float = 50.0
    min_priority_fee_wei: int = 1_000_000
    max_fee_per_gas_cap: int | None = None
    replace_after_seconds: float = 30.0
    max_replacements: int = 5
    fee_bump_bps: int = 1_250
    poll_interval_seconds: float = 0.5
    receipt_timeout_seconds: float = 600.0
    estimate_block: str = "pending"
    # A ledger transaction unmined this long re-broadcasts the one at the lowest unmined nonce
    # (a sender that died before broadcasting leaves such a gap), then again as often.
    heal_gap_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.fee_bump_bps < MIN_REPLACEMENT_BUMP_BPS:
            raise ValueError("fee_bump_bps must be >= 1000 (nodes refuse smaller bumps)")
        if self.confirmations < 0:
            raise ValueError("confirmations counts blocks on top of the inclusion block: >= 0")
