"""Decoded escrow logs as the listener carries them: the signal payload plus what Postgres stores.

The conversions themselves are the one codec in ``workflows.event_codec``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chain.events import DecodedEvent, decode_log
from chain.hexutil import to_int
from workflows.event_codec import row_payload, signal_from_event
from workflows.types import ChainEventSignal


@dataclass(frozen=True, kw_only=True)
class ObservedEvent:
    """One confirmed escrow log: the signal payload, its contract and when its block was made."""

    signal: ChainEventSignal
    contract: str
    block_timestamp: int | None = None

    @property
    def key(self) -> str:
        return self.signal.key

    @property
    def payload(self) -> dict[str, str]:
        """What `blockchain_events.payload` holds for it."""
        return row_payload(self.signal)

    @property
    def block_number(self) -> int:
        return self.signal.identity.block_number

    @property
    def order(self) -> tuple[int, int]:
        """Chain order: block, then log index."""
        return (self.signal.identity.block_number, self.signal.identity.log_index)


def observed(event: DecodedEvent, block_timestamp: int | None = None) -> ObservedEvent:
    """A decoded escrow event as the listener delivers it."""
    return ObservedEvent(
        signal=signal_from_event(event), contract=event.contract, block_timestamp=block_timestamp
    )


def observe(raw_log: Mapping[str, Any], chain_id: int) -> ObservedEvent:
    """Decode a raw eth_getLogs entry (EventDecodeError if it is not an escrow event)."""
    timestamp = raw_log.get("blockTimestamp")
    return observed(
        decode_log(raw_log, chain_id), to_int(timestamp) if timestamp is not None else None
    )
