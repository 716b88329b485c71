"""The operator key's ledger restored from a backup that predates transactions it sent: it never
signs a second transaction at a nonce the chain has (mined or still pending), and an intent it
forgot is not sent again once the chain shows it done."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from bookme.embedded.anvil import AnvilNode
from bookme.ops.rebuild_backup import dump, restore
from bookme.ops.rebuild_ledger import settle_in_flight
from chain.client import ChainClient
from chain.escrow import EscrowReader, OnChainBookingStatus
from chain.keys import TransactionKey
from chain.operator import OperatorSender, OperatorTxStatus
from db.engine import make_engine, make_session_factory
from db.tx_ledger_models import LedgerTransaction
from tests.activities.replica_send import replica_sender
from tests.contracts.harness import RELEASE_DELAY, EscrowHarness

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(fresh_chain: AnvilNode) -> AsyncIterator[ChainClient]:
    async with ChainClient([fresh_chain.http_url], registry=CollectorRegistry()) as chain:
        yield chain


async def _ledger(database_url: str) -> list[tuple[int, str | None]]:
    """(nonce, outcome) of every row, read on a new connection (the tables were recreated)."""
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_session_factory(engine)() as session:
            rows = await session.scalars(
                select(LedgerTransaction).order_by(LedgerTransaction.nonce, LedgerTransaction.id)
            )
            return [(row.nonce, row.outcome) for row in rows]
    finally:
        await engine.dispose()


async def test_a_restored_ledger_takes_no_nonce_the_chain_has_mined_or_holds_pending(
    fresh_chain: AnvilNode,
    client: ChainClient,
    database_url: str,
    sessions,
    tmp_path: Path,
):
    key = TransactionKey(fresh_chain.accounts[5].private_key)
    to = fresh_chain.accounts[6].address
    start = await client.get_transaction_count(key.address, "latest")
    sender = replica_sender(client, sessions, key)
    for _ in range(2):
        await sender.send_and_wait(to=to, data=b"", value=1)
    backup = tmp_path / "ledger.dump"
    dump(database_url, backup)
    # Since the backup: one mined, one broadcast and still pending.
    await sender.send_and_wait(to=to, data=b"", value=1)
    fresh_chain.rpc("evm_setAutomine", False)
    pending = await sender.send(to=to, data=b"", value=1, gas=21_000)
    assert pending.nonce == start + 3

    restore(database_url, backup)
    assert await _ledger(database_url) == [(start, "succeeded"), (start + 1, "succeeded")]

    # A worker started on the restored database: its own engine, no in-process counter.
    engine = make_engine(database_url, pool_size=2)
    try:
        restarted = replica_sender(client, make_session_factory(engine), key)
        sent = await restarted.send(to=to, data=b"", value=2, gas=21_000)
        fresh_chain.rpc("evm_setAutomine", True)
        fresh_chain.rpc("evm_mine")
        receipt = await asyncio.wait_for(restarted.wait(sent), 30)
    finally:
        await engine.dispose()
    assert sent.nonce == start + 4
    assert receipt.succeeded
    assert await client.get_transaction_count(key.address, "latest") == start + 5
    assert (await client.get_transaction_receipt(pending.tx_hash)) is not None
    assert (start + 4, "succeeded") in await _ledger(database_url)


async def test_an_operator_intent_the_restored_ledger_forgot_is_not_sent_again(
    fresh_chain: AnvilNode,
    client: ChainClient,
    database_url: str,
    sessions,
    tmp_path: Path,
):
    escrow = EscrowHarness(fresh_chain)
    booking_id = escrow.paid_booking()
    escrow.travel(RELEASE_DELAY + 1)
    operator_key = TransactionKey(escrow.roles.operator.private_key)
    reader = EscrowReader(client, escrow.escrow.address)
    backup = tmp_path / "ledger.dump"
    dump(database_url, backup)
    first = await OperatorSender(
        replica_sender(client, sessions, operator_key), reader
    ).complete_service(booking_id)
    assert first.status is OperatorTxStatus.MINED
    sent_count = await client.get_transaction_count(operator_key.address, "latest")

    restore(database_url, backup)
    assert await _ledger(database_url) == []
    engine = make_engine(database_url, pool_size=2)
    try:
        sender = replica_sender(client, make_session_factory(engine), operator_key)
        again = await OperatorSender(sender, reader).complete_service(booking_id)
    finally:
        await engine.dispose()
    assert again.booking_status is OnChainBookingStatus.COMPLETED
    assert again.status is OperatorTxStatus.ALREADY_DONE
    assert await client.get_transaction_count(operator_key.address, "latest") == sent_count


async def test_a_transaction_in_flight_at_the_backup_is_settled_from_its_receipt(
    fresh_chain: AnvilNode,
    client: ChainClient,
    database_url: str,
    sessions,
    tmp_path: Path,
):
    """The backup holds its row without an outcome; it was mined since, and nobody waits for
    it any more: `bookme rebuild` settles it from the chain."""
    key = TransactionKey(fresh_chain.accounts[5].private_key)
    start = await client.get_transaction_count(key.address, "latest")
    sender = replica_sender(client, sessions, key)
    fresh_chain.rpc("evm_setAutomine", False)
    sent = await sender.send(to=fresh_chain.accounts[6].address, data=b"", value=1, gas=21_000)
    backup = tmp_path / "ledger.dump"
    dump(database_url, backup)
    fresh_chain.rpc("evm_setAutomine", True)
    fresh_chain.rpc("evm_mine")
    assert (await asyncio.wait_for(sender.wait(sent), 30)).succeeded

    restore(database_url, backup)
    assert await _ledger(database_url) == [(start, None)]
    engine = make_engine(database_url, pool_size=1)
    try:
        restored = make_session_factory(engine)
        assert await settle_in_flight(restored, client, fresh_chain.chain_id) == 1
        assert await settle_in_flight(restored, client, fresh_chain.chain_id) == 0
    finally:
        await engine.dispose()
    assert await _ledger(database_url) == [(start, "succeeded")]
