"""``PostgresTxLedger``: a sending key's nonces and transactions in Postgres, shared by replicas.

The protocol and the reasons for it are in ``chain/ledger.py``. Allocation holds the key's
``tx_nonces`` row ``FOR UPDATE`` for one short database transaction (take the nonce, sign,
insert the record); broadcasting happens after the commit, so the lock never waits on a node.
"""

from __future__ import annotations

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import ColumnElement

from chain.fees import FeeQuote
from chain.hexutil import address
from chain.ledger import SentTransaction, Signer, TxDraft, TxOutcome
from chain.models import TransactionReceipt
from db.tx_ledger_models import LedgerTransaction, TxNonce

L = LedgerTransaction


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

    async def issue(self, draft: TxDraft, *, floor: int, sign: Signer) -> SentTransaction:
        async with self._sessions() as session, session.begin():
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
            # Under the lock, so two replicas sending for one intent cannot both get a nonce.
            if draft.intent is not None and (found := await self._live(session, draft.intent)):
                return found
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

    async def record_version(self, sent: SentTransaction, *, raw: bytes, tx_hash: str) -> None:
        async with self._sessions() as session, session.begin():
            row = await session.scalar(
                select(L).where(*self._mine(), L.nonce == sent.nonce).with_for_update()
            )
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
            await session.execute(
                update(L)
                .where(*self._mine(), L.nonce == sent.nonce)
                .values(
                    outcome=outcome.value,
                    block_number=None if receipt is None else receipt.block_number,
                    block_hash=None if receipt is None else receipt.block_hash,
                    settled_at=func.now(),
                )
            )

    async def at_nonce(self, nonce: int) -> SentTransaction | None:
        async with self._sessions() as session:
            row = await session.scalar(select(L).where(*self._mine(), L.nonce == nonce))
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
