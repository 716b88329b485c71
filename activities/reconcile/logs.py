"""Escrow logs of a block range read straight from the chain, in bounded eth_getLogs ranges."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from chain.client import ChainClient
from chain.events import ESCROW_EVENT_TOPICS, DecodedEvent, decode_escrow_logs

DEFAULT_MAX_BLOCK_RANGE = 2000


async def read_escrow_events(
    client: ChainClient,
    escrow_address: str,
    *,
    chain_id: int,
    from_block: int,
    to_block: int,
    max_block_range: int = DEFAULT_MAX_BLOCK_RANGE,
    chain_booking_id: str | None = None,
    on_range: Callable[[int, int], Awaitable[None] | None] | None = None,
) -> list[DecodedEvent]:
    """Every escrow event in ``[from_block, to_block]`` (of one booking if given), chain order."""
    topics: list[str | tuple[str, ...]] = [ESCROW_EVENT_TOPICS]
    if chain_booking_id is not None:
        topics.append(chain_booking_id.lower())
    events: list[DecodedEvent] = []
    start = max(0, from_block)
    while start <= to_block:
        end = min(to_block, start + max_block_range - 1)
        raw = await client.get_logs(
            from_block=start, to_block=end, address=escrow_address, topics=topics
        )
        events.extend(decode_escrow_logs(raw, chain_id, escrow_address))
        if on_range is not None:
            waited = on_range(start, end)
            if waited is not None:
                await waited
        start = end + 1
    events.sort(key=lambda e: (e.position.block_number, e.identity.log_index))
    return events
