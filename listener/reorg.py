"""Reorg detection by block hashes: is the checkpoint still canonical, and where did we fork?

anvil_reorg (and some providers) send no `removed` logs, so only hashes are trusted. A
mismatch is re-read after a pause before anyone rewinds: a provider that is merely behind
answers "no such block" or a lower head, which is lag, never a reorg.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum

import structlog

from listener.fetch import LogFetcher, ProviderBehind
from listener.store import BlockRef, ListenerStore

log = structlog.get_logger(__name__)

FORK_SEARCH_BATCH = 16


class Verdict(StrEnum):
    CANONICAL = "canonical"
    REORGED = "reorged"
    # Lagging provider or a view that flapped between reads: look again next cycle.
    UNSURE = "unsure"


class ReorgBeyondWindow(RuntimeError):
    """No kept block hash is canonical any more: the reorg is deeper than `reorg_window`."""


class ReorgDetector:
    """Checks the checkpoint against the chain and finds fork points."""

    def __init__(self, fetcher: LogFetcher, store: ListenerStore, *, confirm_delay: float) -> None:
        self._fetcher = fetcher
        self._store = store
        self._delay = confirm_delay

    async def check(self, cursor: BlockRef) -> Verdict:
        """Whether the checkpoint block is still the canonical block at its height."""
        try:
            first = await self._fetcher.header(cursor.number)
        except ProviderBehind:
            return Verdict.UNSURE
        if first.hash == cursor.hash:
            return Verdict.CANONICAL
        await asyncio.sleep(self._delay)
        try:
            second = await self._fetcher.header(cursor.number)
        except ProviderBehind:
            return Verdict.UNSURE
        if second.hash == cursor.hash or second.hash != first.hash:
            log.warning(
                "listener_reorg_unconfirmed",
                block=cursor.number,
                stored=cursor.hash,
                first=first.hash,
                second=second.hash,
            )
            return Verdict.UNSURE
        return Verdict.REORGED

    async def fork_point(self, cursor: BlockRef) -> BlockRef:
        """The newest kept block that is still canonical (everything above it is orphaned)."""
        kept = await self._store.recent_blocks(below_or_at=cursor.number)
        for start in range(0, len(kept), FORK_SEARCH_BATCH):
            batch = kept[start : start + FORK_SEARCH_BATCH]
            canonical = await asyncio.gather(*(self._fetcher.header(b.number) for b in batch))
            for stored, current in zip(batch, canonical, strict=True):
                if stored.hash == current.hash:
                    return stored
        raise ReorgBeyondWindow(
            f"no kept block at or below {cursor.number} is canonical "
            f"({len(kept)} hashes kept); the reorg is deeper than the window"
        )
