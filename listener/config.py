"""The listener's knobs as one frozen value, built from `Settings` by `listener.__main__`."""

from __future__ import annotations

from dataclasses import dataclass

from chain.hexutil import address


@dataclass(frozen=True, kw_only=True)
class ListenerConfig:
    """What one listener follows and how; every duration in seconds."""

    chain_id: int
    contract_address: str
    # Required: their defaults live in Settings (confirmations, poll interval, range, staleness).
    confirmations: int
    # First block to scan when no checkpoint exists (the deployment block is a good choice).
    start_block: int = 0
    poll_interval: float
    max_block_range: int
    min_block_range: int = 1
    initial_block_range: int = 500
    # How many block hashes behind the checkpoint are kept to find a fork point.
    reorg_window: int = 256
    # Workflows signalled at once; events of one booking always go in chain order.
    signal_concurrency: int = 64
    # Pause before re-reading a block whose hash disagrees (the "second read").
    reorg_confirm_delay: float = 0.2
    # No newHeads notification for this long while polling sees progress: re-subscribe.
    head_stale_after: float
    # How often a standby retries the leadership lock.
    standby_retry: float = 1.0
    # Backoff bounds after a failed cycle (provider, Postgres or Temporal trouble).
    retry_initial: float = 0.2
    retry_max: float = 10.0
    booking_cache_size: int = 100_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "contract_address", address(self.contract_address))
        if self.confirmations < 0:
            raise ValueError("confirmations must be >= 0")
        if not 1 <= self.min_block_range <= self.max_block_range:
            raise ValueError("need 1 <= min_block_range <= max_block_range")
        if self.reorg_window < 1 or self.signal_concurrency < 1:
            raise ValueError("reorg_window and signal_concurrency must be >= 1")
