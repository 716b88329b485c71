"""A worker replica's operator send, as its own process so a test can SIGKILL it mid-send.

``python -m tests.activities.replica_send DATABASE_URL RPC_URL ESCROW CHAIN_BOOKING_ID``, with
the operator key in ``REPLICA_OPERATOR_KEY`` (never on the command line).
"""

from __future__ import annotations

import asyncio
import os
import sys

from activities.tx_ledger import PostgresTxLedger
from chain.client import ChainClient
from chain.escrow import EscrowReader
from chain.keys import TransactionKey
from chain.operator import OperatorSender
from chain.sender import SenderConfig, TransactionSender
from db.engine import make_engine, make_session_factory

CHAIN_ID = 31337


def replica_sender(
    client: ChainClient, sessions: object, key: TransactionKey, **config: float
) -> TransactionSender:
    """One replica's sender: its own instance, the shared ledger."""
    return TransactionSender(
        client,
        key,
        chain_id=CHAIN_ID,
        config=SenderConfig(poll_interval_seconds=0.05, **config),  # type: ignore[arg-type]
        ledger=PostgresTxLedger(sessions, chain_id=CHAIN_ID, sender=key.address),  # type: ignore[arg-type]
    )


async def _main(database_url: str, rpc_url: str, escrow: str, booking_id: str) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with ChainClient([rpc_url], timeout=3600) as client:
            key = TransactionKey(os.environ["REPLICA_OPERATOR_KEY"])
            sender = replica_sender(client, make_session_factory(engine), key)
            await OperatorSender(sender, EscrowReader(client, escrow)).complete_service(booking_id)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(_main(*sys.argv[1:5]))
