"""The listener's Postgres state: stored events, the checkpoint and recent block hashes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import delete, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chain.event_key import event_key
from db.models import BlockchainEvent, Booking, ChainCursor, RecentBlock
from db.statuses import BlockchainEventStatus
from listener.closed_events import (
    CLOSE_OUT,
    HOLDS_TX,
    ORPHAN_CLOSED_REASON,
    OTHER_TX_REASON,
    REVERT_UNHEARD_REASON,
    SAME_TX_REASON,
)
from listener.lock import Lease
from listener.observed import ObservedEvent

REORGED = BlockchainEventStatus.REORGED.value
_ROWS_PER_STATEMENT = 1000
_EVENTS_PER_STATEMENT = 5000

# One statement per chunk, with arrays instead of a VALUES row per event (which SQLAlchemy
# would compile afresh every time). A conflicting row is left alone unless it was REORGED
# (revived) or now sits in another block (its position is updated). The data-modifying CTE's own rows are not visible to the
# outer SELECT, so it reports the pre-insert state of existing rows and then the written ones.
_REMEMBER_BLOCKS = text(
    """
    INSERT INTO recent_blocks (chain_id, contract_address, block_number, block_hash)
    SELECT :chain_id, :contract, n, h
    FROM unnest(CAST(:numbers AS bigint[]), CAST(:hashes AS text[])) AS t(n, h)
    ON CONFLICT (chain_id, contract_address, block_number)
    DO UPDATE SET block_hash = excluded.block_hash
    """
)

_STORE_EVENTS = text(
    """
    WITH incoming AS (
        SELECT * FROM unnest(
            CAST(:tx AS text[]), CAST(:li AS integer[]), CAST(:bn AS bigint[]),
            CAST(:bh AS text[]), CAST(:ca AS text[]), CAST(:et AS text[]),
            CAST(:cb AS text[]), CAST(:bk AS text[]), CAST(:pl AS text[])
        ) AS t(tx_hash, log_index, block_number, block_hash, contract_address, event_type,
               chain_booking_id, booking_id, payload)
    ),
    written AS (
        INSERT INTO blockchain_events AS e (
            chain_id, tx_hash, log_index, block_number, block_hash, contract_address,
            event_type, chain_booking_id, booking_id, payload, status
        )
        SELECT :chain_id, tx_hash, log_index, block_number, block_hash, contract_address,
               event_type, chain_booking_id, CAST(booking_id AS uuid), CAST(payload AS jsonb),
               'RECEIVED'
        FROM incoming
        ON CONFLICT (chain_id, tx_hash, log_index) DO UPDATE SET
            block_number = excluded.block_number,
            block_hash = excluded.block_hash,
            status = CASE WHEN e.status = 'REORGED' THEN 'RECEIVED' ELSE e.status END,
            status_reason = CASE WHEN e.status = 'REORGED' THEN NULL ELSE e.status_reason END,
            processed_at = CASE WHEN e.status = 'REORGED' THEN NULL ELSE e.processed_at END,
            booking_id = coalesce(e.booking_id, excluded.booking_id)
        WHERE e.status = 'REORGED' OR e.block_hash <> excluded.block_hash
        RETURNING e.tx_hash, e.log_index, e.status
    )
    SELECT * FROM (
        SELECT e.tx_hash, e.log_index, e.status, 0 AS pass
        FROM blockchain_events e
        JOIN incoming i ON e.tx_hash = i.tx_hash AND e.log_index = i.log_index
        WHERE e.chain_id = :chain_id
        UNION ALL
        SELECT tx_hash, log_index, status, 1 AS pass FROM written
    ) AS found
    ORDER BY pass
    """
).columns()
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
            ordered = sorted(remembered.items())
            await conn.execute(
                _REMEMBER_BLOCKS,
                {
                    "chain_id": self.chain_id,
                    "contract": self.contract,
                    "numbers": [number for number, _ in ordered],
                    "hashes": [block_hash for _, block_hash in ordered],
                },
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

    async def rewind(
        self,
        fork_base: BlockRef,
        orphaned: Sequence[StoredEvent],
        *,
        reason: str,
        lease: Lease | None,
    ) -> int:
        """Mark the orphaned events REORGED, forget their blocks, move the checkpoint back.

        Only the rows `events_above` read (their reverts went out), in the block read: a row a
        workflow's poll wrote meanwhile from the new chain was never reverted, so it stays.
        """
        keys = [(r.tx_hash, r.log_index, r.block_hash) for r in orphaned]
        async with self._engine.begin() as conn:
            if lease is not None:
                await lease.assert_held(conn)
            marked = 0
            for chunk in _chunks(keys):
                result = await conn.execute(
                    update(BlockchainEvent)
                    .where(
                        BlockchainEvent.chain_id == self.chain_id,
                        BlockchainEvent.contract_address == self.contract,
                        BlockchainEvent.block_number > fork_base.number,
                        BlockchainEvent.status != REORGED,
                        tuple_(
                            BlockchainEvent.tx_hash,
                            BlockchainEvent.log_index,
                            BlockchainEvent.block_hash,
                        ).in_(list(chunk)),
                    )
                    .values(status=REORGED, status_reason=reason)
                )
                marked += int(result.rowcount)
            await conn.execute(
                delete(RecentBlock).where(
                    RecentBlock.chain_id == self.chain_id,
                    RecentBlock.contract_address == self.contract,
                    RecentBlock.block_number > fork_base.number,
                )
            )
            await self._write_cursor(conn, fork_base)
            return marked

    # --- events ---

    async def mark_reorged(self, keys: Sequence[tuple[str, int]], *, reason: str) -> None:
        """Mark events (by tx hash and log index) REORGED."""
        if not keys:
            return
        async with self._engine.begin() as conn:
            await conn.execute(
                update(BlockchainEvent)
                .where(
                    BlockchainEvent.chain_id == self.chain_id,
                    tuple_(BlockchainEvent.tx_hash, BlockchainEvent.log_index).in_(list(keys)),
                )
                .values(status=REORGED, status_reason=reason)
            )

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
            for chunk in _chunks(events, _EVENTS_PER_STATEMENT):
                rows = await conn.execute(_STORE_EVENTS, self._columns(chunk, bookings))
                for tx_hash, log_index, status, _ in rows:
                    # Rows written now come last and win over the pre-insert snapshot.
                    statuses[event_key(self.chain_id, tx_hash, log_index)] = status
        return statuses

    def _columns(
        self, events: Sequence[ObservedEvent], bookings: Mapping[str, str]
    ) -> dict[str, object]:
        identities = [e.signal.identity for e in events]
        return {
            "chain_id": self.chain_id,
            "tx": [i.tx_hash for i in identities],
            "li": [i.log_index for i in identities],
            "bn": [i.block_number for i in identities],
            "bh": [i.block_hash for i in identities],
            "ca": [e.contract for e in events],
            "et": [e.signal.kind.value for e in events],
            "cb": [e.signal.chain_booking_id for e in events],
            "bk": [bookings.get(e.signal.chain_booking_id.lower()) for e in events],
            "pl": [json.dumps(e.payload) for e in events],
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

    async def holds_tx(self, booking_id: str, event: ObservedEvent) -> bool:
        """Whether the booking's row already holds this event's transaction for its kind."""
        async with self._engine.connect() as conn:
            held = await conn.scalar(
                HOLDS_TX,
                {
                    "event_type": event.signal.kind.value,
                    "tx": event.signal.identity.tx_hash,
                    "booking": booking_id,
                },
            )
        return bool(held)

    async def close_out(self, events: Sequence[tuple[str | None, ObservedEvent]]) -> dict[str, str]:
        """Record an outcome for events whose workflow (booking's, or orphan's when the booking
        is None) had already closed; returns the status written by event key."""
        outcomes: dict[str, str] = {}
        if not events:
            return outcomes
        async with self._engine.begin() as conn:
            for booking_id, event in events:
                identity = event.signal.identity
                status = await conn.scalar(
                    CLOSE_OUT,
                    {
                        "chain_id": self.chain_id,
                        "tx": identity.tx_hash,
                        "li": identity.log_index,
                        "event_type": event.signal.kind.value,
                        "booking": booking_id,
                        "same_reason": SAME_TX_REASON,
                        "other_reason": OTHER_TX_REASON,
                        "orphan_reason": ORPHAN_CLOSED_REASON,
                    },
                )
                if status is not None:
                    outcomes[event.key] = str(status)
        return outcomes

    async def note_unheard_reverts(self, keys: Sequence[tuple[str, int]]) -> None:
        """Say on REORGED rows that their booking's workflow had closed and never heard it."""
        await self.mark_reorged(keys, reason=REVERT_UNHEARD_REASON)
