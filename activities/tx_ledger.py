"""``PostgresTxLedger``: a sending key's nonces and transactions in Postgres, shared by replicas.

The protocol and the reasons for it are in ``chain/ledger.py``. Allocation holds the key's
``tx_nonces`` row ``FOR UPDATE`` for one short database transaction (take the nonce, sign,
insert the record); broadcasting happens after the commit, so the lock never waits on a node.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import ColumnElement

from chain.fees import FeeQuote
from chain.hexutil import address
from chain.ledger import ChainCount, SentTransaction, Signer, TxDraft, TxOutcome
from chain.models import TransactionReceipt
from db.tx_ledger_models import LedgerTransaction, TxNonce

L = LedgerTransaction
log = structlog.get_logger(__name__)


class PostgresTxLedger:
    """The ledger of one key on one chain (implements ``chain.ledger.TxLedger``)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, chain_id: int, sender: str
    ) -> None:
        self._sessions = sessions
        self.chain_id = chain_id
        self.sender = address(sender)

    def _mine(self) -> list[ColumnElement[bool]]:
        return [L.chain_id == self.chain_id, L.sender == self.sender]

    async def find(self, intent: str) -> SentTransaction | None:
        async with self._sessions() as session:
            return await self._live(session, intent)

    async def _live(self, session: AsyncSession, intent: str) -> SentTransaction | None:
        row = await session.scalar(
            select(L).where(
                *self._mine(),
                L.intent == intent,
                (L.outcome.is_(None)) | (L.outcome == TxOutcome.SUCCEEDED.value),
            )
        )
        return None if row is None else _sent(row)

    async def issue(
        self, draft: TxDraft, *, chain_count: ChainCount, sign: Signer
    ) -> SentTransaction:
        # Read before the lock, so the lock never waits on a node; a stale count is still a floor.
        floor = await chain_count()
        async with self._sessions() as session, session.begin():
            next_nonce = await self._lock_next_nonce(session, floor)
            # Under the lock, so two replicas sending for one intent cannot both get a nonce.
            if draft.intent is not None and (found := await self._live(session, draft.intent)):
                return found
            if floor < next_nonce and not await self._in_flight_from(session, floor):
                # Settled nonces the chain does not count: a stale count (another replica's
                # transaction mined since we asked), or a chain that lost them. Ask again: what
                # was settled before this point is counted by now.
                floor = await chain_count()
                if floor < next_nonce and not await self._in_flight_from(session, floor):
                    next_nonce = await self._reclaim_lost(session, floor, next_nonce)
            sent = SentTransaction(
                nonce=max(next_nonce, floor),
                to=draft.to,
                data=draft.data,
                value=draft.value,
                gas=draft.gas,
                fees=draft.fees,
                intent=draft.intent,
            )
            sent.raw, tx_hash = sign(sent)
            sent.hashes.append(tx_hash)
            await session.execute(insert(L).values(**self._columns(sent)))
            await session.execute(
                update(TxNonce)
                .where(TxNonce.chain_id == self.chain_id, TxNonce.sender == self.sender)
                .values(next_nonce=sent.nonce + 1)
            )
        return sent

    async def _lock_next_nonce(self, session: AsyncSession, floor: int) -> int:
        """The key's next nonce, its row locked until the session's transaction ends."""
        await session.execute(
            pg_insert(TxNonce)
            .values(chain_id=self.chain_id, sender=self.sender, next_nonce=floor)
            .on_conflict_do_nothing()
        )
        next_nonce = await session.scalar(
            select(TxNonce.next_nonce)
            .where(TxNonce.chain_id == self.chain_id, TxNonce.sender == self.sender)
            .with_for_update()
        )
        assert next_nonce is not None
        return next_nonce

    async def _in_flight_from(self, session: AsyncSession, nonce: int) -> bool:
        found = await session.scalar(
            select(L.id).where(*self._mine(), L.nonce >= nonce, L.outcome.is_(None)).limit(1)
        )
        return found is not None

    async def _reclaim_lost(self, session: AsyncSession, floor: int, next_nonce: int) -> int:
        """The chain counts fewer transactions than the ledger settled, and none is on its way:
        it lost them (a dev chain restarted from an older state, a deep reorg). Their nonces are
        free again; their rows are marked dropped (their intents may be sent again)."""
        await session.execute(
            update(L)
            .where(*self._mine(), L.nonce >= floor, L.outcome != TxOutcome.DROPPED.value)
            .values(outcome=TxOutcome.DROPPED.value, settled_at=func.now())
        )
        log.warning("tx_ledger_nonces_reclaimed", sender=self.sender, nonce=floor, was=next_nonce)
        return floor

    def _columns(self, sent: SentTransaction) -> dict[str, object]:
        return {
            "chain_id": self.chain_id,
            "sender": self.sender,
            "nonce": sent.nonce,
            "intent": sent.intent,
            "to_address": sent.to,
            "data": sent.data,
            "value": sent.value,
            "gas": sent.gas,
            "max_fee_per_gas": sent.fees.max_fee_per_gas,
            "max_priority_fee_per_gas": sent.fees.max_priority_fee_per_gas,
            "tx_hashes": list(sent.hashes),
            "raw_tx": sent.raw,
        }

    def _newest_at(self, nonce: int) -> Select[Any]:
        """The row of ``nonce`` (after a reclaim, the one written since; dropped ones stay)."""
        return select(L).where(*self._mine(), L.nonce == nonce).order_by(L.id.desc()).limit(1)

    async def record_version(self, sent: SentTransaction, *, raw: bytes, tx_hash: str) -> None:
        async with self._sessions() as session, session.begin():
            row = await session.scalar(self._newest_at(sent.nonce).with_for_update())
            if row is None:
                raise LookupError(f"nonce {sent.nonce} of {self.sender} is not in the ledger")
            if tx_hash not in row.tx_hashes:
                row.tx_hashes = [*row.tx_hashes, tx_hash]
            row.raw_tx = raw
            row.max_fee_per_gas = sent.fees.max_fee_per_gas
            row.max_priority_fee_per_gas = sent.fees.max_priority_fee_per_gas

    async def settle(
        self, sent: SentTransaction, outcome: TxOutcome, receipt: TransactionReceipt | None
    ) -> None:
        async with self._sessions() as session, session.begin():
            row = await session.scalar(self._newest_at(sent.nonce).with_for_update())
            if row is None:
                return
            row.outcome = outcome.value
            row.block_number = None if receipt is None else receipt.block_number
            row.block_hash = None if receipt is None else receipt.block_hash
            row.settled_at = datetime.now(UTC)

    async def at_nonce(self, nonce: int) -> SentTransaction | None:
        async with self._sessions() as session:
            row = await session.scalar(self._newest_at(nonce))
            return None if row is None else _sent(row)


def _sent(row: LedgerTransaction) -> SentTransaction:
    return SentTransaction(
        nonce=row.nonce,
        to=row.to_address,
        data=row.data,
        value=row.value,
        gas=row.gas,
        fees=FeeQuote(
            max_fee_per_gas=row.max_fee_per_gas,
            max_priority_fee_per_gas=row.max_priority_fee_per_gas,
        ),
        hashes=list(row.tx_hashes),
        intent=row.intent,
        raw=row.raw_tx,
        outcome=None if row.outcome is None else TxOutcome(row.outcome),
    )
