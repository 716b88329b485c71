"""Operator transactions a restored ledger still shows in flight, settled from their receipts.

A backup taken while a transaction was on its way holds its row without an outcome; the
transaction was mined since, and the activity that waited for it had finished before the
restore, so nothing else would ever settle the row. The ledger's own ``settle`` records what the
chain says. Rows of transactions sent after the backup are gone and stay gone: the next nonce
is never below the chain's pending count, so none is given out twice (the runbook says so).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.tx_ledger import PostgresTxLedger
from chain.client import ChainClient
from chain.ledger import TxOutcome
from db.tx_ledger_models import LedgerTransaction as L


async def settle_in_flight(
    sessions: async_sessionmaker[AsyncSession], chain: ChainClient, chain_id: int
) -> int:
    """Settle every unsettled row whose transaction (any of its versions) is mined; how many."""
    async with sessions() as session:
        rows = (
            await session.execute(
                select(L.sender, L.nonce)
                .where(L.chain_id == chain_id, L.outcome.is_(None))
                .order_by(L.sender, L.nonce)
            )
        ).all()
    settled = 0
    for sender, nonce in rows:
        ledger = PostgresTxLedger(sessions, chain_id=chain_id, sender=sender)
        sent = await ledger.at_nonce(nonce)
        if sent is None or sent.outcome is not None:
            continue
        for tx_hash in reversed(sent.hashes):
            receipt = await chain.get_transaction_receipt(tx_hash)
            if receipt is not None:
                outcome = TxOutcome.SUCCEEDED if receipt.succeeded else TxOutcome.REVERTED
                await ledger.settle(sent, outcome, receipt)
                settled += 1
                break
    return settled
