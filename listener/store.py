"""The listener's Postgres state: stored events, the checkpoint and recent block hashes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import and_, delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.models import BlockchainEvent, Booking, ChainCursor, RecentBlock
from db.statuses import BlockchainEventStatus
from listener.events import ObservedEvent
from listener.lock import Lease

RECEIVED = BlockchainEventStatus.RECEIVED.value
REORGED = BlockchainEventStatus.REORGED.value
_ROWS_PER_STATEMENT = 1000
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class BlockRef:
    """A block by number and hash."""

    number: int
    hash: str


@dataclass(frozen=True, kw_only=True)
class StoredEvent:
    """A stored event row, enough to rebuild its signal."""

    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    event_type: str
    chain_booking_id: str | None
    booking_id: str | None
    payload: dict[str, object]
    status: str


def _chunks(items: Sequence[T], size: int = _ROWS_PER_STATEMENT) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class ListenerStore:
    """Reads and writes for one (chain, contract); each method is one transaction."""

    def __init__(self, engine: AsyncEngine, *, chain_id: int, contract_address: str) -> None:
        self._engine = engine
        self.chain_id = chain_id
        self.contract = contract_address

    # --- checkpoint and recent blocks ---

    async def load_cursor(self) -> BlockRef | None:
        """The checkpoint: everything up to this block is stored and signalled."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(ChainCursor.last_block_number, ChainCursor.last_block_hash).where(
                        ChainCursor.chain_id == self.chain_id,
                        ChainCursor.contract_address == self.contract,
                    )
                )
            ).first()
        return BlockRef(number=row[0], hash=row[1]) if row else None

    async def recent_blocks(self, *, below_or_at: int) -> list[BlockRef]:
        """Kept block hashes at or below a height, newest first."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(RecentBlock.block_number, RecentBlock.block_hash)
                .where(
                    RecentBlock.chain_id == self.chain_id,
                    RecentBlock.contract_address == self.contract,
                    RecentBlock.block_number <= below_or_at,
                )
                .order_by(RecentBlock.block_number.desc())
            )
            return [BlockRef(number=n, hash=h) for n, h in rows]

    async def advance(
        self, cursor: BlockRef, blocks: Sequence[BlockRef], *, keep: int, lease: Lease | None
    ) -> None:
        """Move the checkpoint and remember block hashes, dropping those older than `keep`."""
        floor = cursor.number - keep
        remembered = {b.number: b.hash for b in blocks if b.number > floor}
        remembered[cursor.number] = cursor.hash
        async with self._engine.begin() as conn:
            if lease is not None:
                await lease.assert_held(conn)
            await self._write_cursor(conn, cursor)
            rows = [
                {
                    "chain_id": self.chain_id,
                    "contract_address": self.contract,
                    "block_number": number,
                    "block_hash": block_hash,
                }
                for number, block_hash in sorted(remembered.items())
            ]
            for chunk in _chunks(rows):
                statement = insert(RecentBlock).values(list(chunk))
                await conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=["chain_id", "contract_address", "block_number"],
                        set_={"block_hash": statement.excluded.block_hash},
                    )
                )
            # Keep the newest block at or below the floor as an anchor: a reorg as deep as
            # the window then still finds a canonical block to rewind to.
            anchor = (
                select(func.max(RecentBlock.block_number))
                .where(
                    RecentBlock.chain_id == self.chain_id,
                    RecentBlock.contract_address == self.contract,
                    RecentBlock.block_number <= floor,
                )
                .scalar_subquery()
            )
            await conn.execute(
                delete(RecentBlock).where(
                    RecentBlock.chain_id == self.chain_id,
                    RecentBlock.contract_address == self.contract,
                    RecentBlock.block_number < anchor,
                )
            )

    async def _write_cursor(self, conn: AsyncConnection, cursor: BlockRef) -> None:
        statement = insert(ChainCursor).values(
            chain_id=self.chain_id,
            contract_address=self.contract,
            last_block_number=cursor.number,
            last_block_hash=cursor.hash,
        )
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=["chain_id", "contract_address"],
                set_={
                    "last_block_number": statement.excluded.last_block_number,
                    "last_block_hash": statement.excluded.last_block_hash,
                    "updated_at": func.now(),
                },
            )
        )

    async def rewind(self, fork_base: BlockRef, *, reason: str, lease: Lease | None) -> int:
        """Mark events above the fork point REORGED, forget their blocks, move the checkpoint back."""
        async with self._engine.begin() as conn:
            if lease is not None:
                await lease.assert_held(conn)
            result = await conn.execute(
                update(BlockchainEvent)
                .where(
                    BlockchainEvent.chain_id == self.chain_id,
                    BlockchainEvent.contract_address == self.contract,
                    BlockchainEvent.block_number > fork_base.number,
                    BlockchainEvent.status != REORGED,
                )
                .values(status=REORGED, status_reason=reason)
            )
            await conn.execute(
                delete(RecentBlock).where(
                    RecentBlock.chain_id == self.chain_id,
                    RecentBlock.contract_address == self.contract,
                    RecentBlock.block_number > fork_base.number,
                )
            )
            await self._write_cursor(conn, fork_base)
            return int(result.rowcount)

    # --- events ---

    async def events_above(self, block_number: int) -> list[StoredEvent]:
        """Live (not REORGED) events stored above a height, in chain order."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(
                    BlockchainEvent.tx_hash,
                    BlockchainEvent.log_index,
                    BlockchainEvent.block_number,
                    BlockchainEvent.block_hash,
                    BlockchainEvent.event_type,
                    BlockchainEvent.chain_booking_id,
                    BlockchainEvent.booking_id,
                    BlockchainEvent.payload,
                    BlockchainEvent.status,
                )
                .where(
                    BlockchainEvent.chain_id == self.chain_id,
                    BlockchainEvent.contract_address == self.contract,
                    BlockchainEvent.block_number > block_number,
                    BlockchainEvent.status != REORGED,
                )
                .order_by(BlockchainEvent.block_number, BlockchainEvent.log_index)
            )
            return [
                StoredEvent(
                    tx_hash=r.tx_hash,
                    log_index=r.log_index,
                    block_number=r.block_number,
                    block_hash=r.block_hash,
                    event_type=r.event_type,
                    chain_booking_id=r.chain_booking_id,
                    booking_id=str(r.booking_id) if r.booking_id else None,
                    payload=dict(r.payload),
                    status=r.status,
                )
                for r in rows
            ]

    async def store_events(
        self, events: Sequence[ObservedEvent], bookings: Mapping[str, str]
    ) -> dict[str, str]:
        """Insert events (a re-insert is a no-op; a REORGED row that came back is revived).

        Returns every event's stored status by key, so the caller signals what is not done.
        """
        if not events:
            return {}
        statuses: dict[str, str] = {}
        async with self._engine.begin() as conn:
            for chunk in _chunks(events):
                rows = [self._row(event, bookings) for event in chunk]
                statement = insert(BlockchainEvent).values(rows)
                table = BlockchainEvent.__table__
                # Same identity in a new block (re-included after a reorg): revive the row.
                revive = statement.on_conflict_do_update(
                    index_elements=["chain_id", "tx_hash", "log_index"],
                    set_={
                        "block_number": statement.excluded.block_number,
                        "block_hash": statement.excluded.block_hash,
                        "status": RECEIVED,
                        "status_reason": None,
                        "processed_at": None,
                        "booking_id": func.coalesce(
                            table.c.booking_id, statement.excluded.booking_id
                        ),
                    },
                    where=table.c.status == REORGED,
                )
                await conn.execute(revive)
                keys = [(e.signal.identity.tx_hash, e.signal.identity.log_index) for e in chunk]
                found = await conn.execute(
                    select(
                        BlockchainEvent.tx_hash, BlockchainEvent.log_index, BlockchainEvent.status
                    ).where(
                        and_(
                            BlockchainEvent.chain_id == self.chain_id,
                            tuple_(BlockchainEvent.tx_hash, BlockchainEvent.log_index).in_(keys),
                        )
                    )
                )
                for tx_hash, log_index, status in found:
                    statuses[f"{self.chain_id}:{tx_hash}:{log_index}"] = status
        return statuses

    def _row(self, event: ObservedEvent, bookings: Mapping[str, str]) -> dict[str, object]:
        identity = event.signal.identity
        booking = bookings.get(event.signal.chain_booking_id)
        return {
            "chain_id": self.chain_id,
            "tx_hash": identity.tx_hash,
            "log_index": identity.log_index,
            "block_number": identity.block_number,
            "block_hash": identity.block_hash,
            "contract_address": event.contract,
            "event_type": event.signal.kind.value,
            "chain_booking_id": event.signal.chain_booking_id,
            "booking_id": uuid.UUID(booking) if booking else None,
            "payload": event.payload,
            "status": RECEIVED,
        }

    async def find_bookings(self, chain_booking_ids: Iterable[str]) -> dict[str, str]:
        """Booking ids (UUID text) by chain booking id (stored lowercase), for those that exist."""
        wanted = sorted({c.lower() for c in chain_booking_ids})
        if not wanted:
            return {}
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(Booking.blockchain_booking_id, Booking.id).where(
                    Booking.blockchain_booking_id.in_(wanted)
                )
            )
            return {str(cbid).lower(): str(bid) for cbid, bid in rows}
