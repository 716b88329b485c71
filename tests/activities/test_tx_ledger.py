"""Two worker replicas on one operator key: nonces from the Postgres ledger never collide, and a
replica killed mid-send (a real SIGKILL) loses nothing and sends nothing twice."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.tx_ledger import PostgresTxLedger
from bookme.embedded.anvil import AnvilNode
from chain.client import ChainClient
from chain.errors import RpcError
from chain.escrow import EscrowReader, OnChainBookingStatus
from chain.keys import TransactionKey
from chain.ledger import TxDraft, TxOutcome
from chain.operator import OperatorSender, OperatorTxStatus
from chain.sender import TransactionSender
from db.engine import make_engine, make_session_factory
from db.tx_ledger_models import TX_OUTCOMES, LedgerTransaction
from tests.activities.replica_send import replica_sender
from tests.chain.rpc_proxy import ScriptedRpcServer
from tests.contracts.harness import RELEASE_DELAY, EscrowHarness

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def client(fresh_chain: AnvilNode) -> AsyncIterator[ChainClient]:
    async with ChainClient([fresh_chain.http_url], registry=CollectorRegistry()) as chain:
        yield chain


@pytest.fixture
async def other_replica_sessions(database_url: str) -> AsyncIterator[async_sessionmaker[Any]]:
    """A second engine on the same database: the other replica's own connections."""
    engine = make_engine(database_url, pool_size=2)
    try:
        yield make_session_factory(engine)
    finally:
        await engine.dispose()


async def _ledger_rows(sessions: async_sessionmaker[AsyncSession]) -> list[LedgerTransaction]:
    async with sessions() as session:
        rows = await session.scalars(
            select(LedgerTransaction).order_by(LedgerTransaction.nonce, LedgerTransaction.id)
        )
        return list(rows)


def test_the_ledger_table_accepts_exactly_the_senders_outcomes():
    assert set(TX_OUTCOMES) == {outcome.value for outcome in TxOutcome}


async def test_without_the_ledger_two_replicas_collide_on_a_nonce(
    fresh_chain: AnvilNode, client: ChainClient
):
    """What the ledger fixes: each in-process counter believes the next nonce is its own."""
    key = TransactionKey(fresh_chain.accounts[5].private_key)
    a, b = (TransactionSender(client, key, chain_id=31337) for _ in range(2))
    to = fresh_chain.accounts[6].address
    await a.send_and_wait(to=to, data=b"", value=1)
    await b.send_and_wait(to=to, data=b"", value=1)  # takes the nonce `a` counted on next
    with pytest.raises(RpcError, match="nonce"):
        await a.send(to=to, data=b"", value=1, gas=21_000)


async def test_two_replicas_on_one_key_send_at_once_with_consecutive_nonces(
    fresh_chain: AnvilNode, client: ChainClient, sessions, other_replica_sessions
):
    key = TransactionKey(fresh_chain.accounts[5].private_key)
    a = replica_sender(client, sessions, key)
    b = replica_sender(client, other_replica_sessions, key)
    to = fresh_chain.accounts[6].address
    start = await client.get_transaction_count(key.address, "latest")
    # The interleaving that breaks in-process counters, then twenty at once.
    for sender in (a, b, a):
        await sender.send_and_wait(to=to, data=b"", value=1)
    results = await asyncio.gather(
        *(s.send_and_wait(to=to, data=b"", value=2 + i) for i, s in enumerate([a, b] * 10))
    )
    assert all(receipt.succeeded for _, receipt in results)
    assert sorted(sent.nonce for sent, _ in results) == list(range(start + 3, start + 23))
    assert await client.get_transaction_count(key.address, "latest") == start + 23
    rows = await _ledger_rows(sessions)
    assert [row.nonce for row in rows] == list(range(start, start + 23))
    assert {row.outcome for row in rows} == {"succeeded"}


class KillSwitchProxy(ScriptedRpcServer):
    """Forwards to anvil; the first raw transaction is swallowed or forwarded, then the call
    hangs (the replica is killed while it waits for the answer)."""

    def __init__(self, upstream: str, *, forward_broadcast: bool) -> None:
        super().__init__("replica", self._handle)
        self.upstream = upstream
        self.forward_broadcast = forward_broadcast
        self.broadcast = asyncio.Event()
        self._http = httpx.AsyncClient(timeout=30.0)

    async def _handle(self, method: str, params: list[Any]) -> Any:
        if method == "eth_sendRawTransaction":
            if self.forward_broadcast:
                await self._forward(method, params)
            self.broadcast.set()
            await asyncio.sleep(3600)
        return await self._forward(method, params)

    async def _forward(self, method: str, params: list[Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        answer = json.loads((await self._http.post(self.upstream, json=body)).content)
        return {"error": answer["error"]} if "error" in answer else answer["result"]

    async def stop(self) -> None:
        await super().stop()
        await self._http.aclose()


async def _kill_replica_mid_send(
    escrow: EscrowHarness, database_url: str, booking_id: str, *, forward_broadcast: bool
) -> None:
    """Run a replica's completeService in a process and SIGKILL it inside the broadcast."""
    proxy = KillSwitchProxy(escrow.node.http_url, forward_broadcast=forward_broadcast)
    url = await proxy.start()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.activities.replica_send",
        database_url,
        url,
        escrow.escrow.address,
        booking_id,
        cwd=ROOT,
        env={**os.environ, "REPLICA_OPERATOR_KEY": escrow.roles.operator.private_key},
        stderr=asyncio.subprocess.PIPE,
    )
    exited = asyncio.ensure_future(process.wait())
    try:
        await asyncio.wait(
            {exited, asyncio.ensure_future(proxy.broadcast.wait())},
            timeout=60,
            return_when=asyncio.FIRST_COMPLETED,
        )
        assert not exited.done(), (await process.stderr.read()).decode()  # type: ignore[union-attr]
        assert proxy.broadcast.is_set()
        process.kill()
        await exited
    finally:
        if not exited.done():
            process.kill()
            await exited
        await proxy.stop()


@pytest.mark.parametrize("forward_broadcast", [False, True], ids=["before", "after"])
async def test_a_replica_killed_inside_the_broadcast_is_finished_by_another_with_one_transaction(
    fresh_chain: AnvilNode,
    client: ChainClient,
    database_url: str,
    sessions,
    other_replica_sessions,
    forward_broadcast: bool,
):
    """Killed before the node got the transaction, or after (it may even be mined already):
    the other replica finds the record and finishes that transaction, never a second one."""
    escrow = EscrowHarness(fresh_chain)
    booking_id = escrow.paid_booking()
    escrow.travel(RELEASE_DELAY + 1)
    operator = escrow.roles.operator.address
    start = await client.get_transaction_count(operator, "latest")

    await _kill_replica_mid_send(
        escrow, database_url, booking_id, forward_broadcast=forward_broadcast
    )
    (recorded,) = await _ledger_rows(sessions)
    assert (recorded.nonce, recorded.outcome) == (start, None)

    key = TransactionKey(escrow.roles.operator.private_key)
    survivor = OperatorSender(
        replica_sender(client, other_replica_sessions, key),
        EscrowReader(client, escrow.escrow.address),
    )
    result = await asyncio.wait_for(survivor.complete_service(booking_id), 60)
    assert result.status is OperatorTxStatus.MINED
    assert result.booking_status is OnChainBookingStatus.COMPLETED
    assert (result.tx_hash, result.nonce) == (recorded.tx_hashes[-1], start)
    assert await client.get_transaction_count(operator, "latest") == start + 1
    (settled,) = await _ledger_rows(sessions)
    assert settled.outcome == "succeeded"
    # Asked again (a retried activity): the same transaction, still one.
    again = await survivor.complete_service(booking_id)
    assert again.tx_hash == result.tx_hash
    assert await client.get_transaction_count(operator, "latest") == start + 1


async def test_a_nonce_left_unbroadcast_by_a_dead_replica_is_sent_by_the_next_one_behind_it(
    fresh_chain: AnvilNode, client: ChainClient, database_url: str, sessions, other_replica_sessions
):
    """Nobody retries the dead replica's intent: the next transaction, stuck behind the gap,
    broadcasts the recorded one, and both are mined with no nonce skipped."""
    escrow = EscrowHarness(fresh_chain)
    booking_id = escrow.paid_booking()
    escrow.travel(RELEASE_DELAY + 1)
    operator = escrow.roles.operator.address
    start = await client.get_transaction_count(operator, "latest")
    await _kill_replica_mid_send(escrow, database_url, booking_id, forward_broadcast=False)

    key = TransactionKey(escrow.roles.operator.private_key)
    sender = replica_sender(client, other_replica_sessions, key, heal_gap_seconds=0.2)
    sent, receipt = await asyncio.wait_for(
        sender.send_and_wait(to=fresh_chain.accounts[6].address, data=b"", value=1), 60
    )
    assert receipt.succeeded
    assert sent.nonce == start + 1
    assert await client.get_transaction_count(operator, "latest") == start + 2
    assert escrow.booking(booking_id)[0] == 2  # COMPLETED by the healed transaction


async def test_a_replacement_the_other_replica_sent_is_found_not_reported_dropped(
    fresh_chain: AnvilNode, client: ChainClient, sessions, other_replica_sessions
):
    """Both replicas wait on one transaction (a retried activity while the first still runs);
    the one that never saw the other's fee bump still finds the mined version in the ledger."""
    key = TransactionKey(fresh_chain.accounts[5].private_key)
    a = replica_sender(client, sessions, key)
    b = replica_sender(client, other_replica_sessions, key)
    to = fresh_chain.accounts[6].address
    fresh_chain.rpc("evm_setAutomine", False)
    try:
        first = await a.send(to=to, data=b"", value=1, intent="transfer:1")
        again = await b.send(to=to, data=b"", value=1, intent="transfer:1")
        assert (again.nonce, again.tx_hash) == (first.nonce, first.tx_hash)
        assert await b.replace(again)
        fresh_chain.rpc("evm_mine")
    finally:
        fresh_chain.rpc("evm_setAutomine", True)
    receipt = await asyncio.wait_for(a.wait(first), 30)
    assert receipt.tx_hash == again.tx_hash != first.hashes[0]
    (row,) = await _ledger_rows(sessions)
    assert (row.outcome, row.tx_hashes) == ("succeeded", again.hashes)


async def test_nonces_a_chain_lost_are_taken_again(
    fresh_chain: AnvilNode, client: ChainClient, sessions
):
    """A dev chain restarted from an older state has forgotten settled transactions: the
    ledger gives their nonces out again instead of leaving a gap nothing fills."""
    key = TransactionKey(fresh_chain.accounts[5].private_key)
    sender = replica_sender(client, sessions, key)
    to = fresh_chain.accounts[6].address
    start = await client.get_transaction_count(key.address, "latest")
    snapshot = fresh_chain.rpc("evm_snapshot")
    for _ in range(2):
        await sender.send_and_wait(to=to, data=b"", value=1)
    fresh_chain.rpc("evm_revert", snapshot)
    sent, receipt = await asyncio.wait_for(sender.send_and_wait(to=to, data=b"", value=1), 30)
    assert (sent.nonce, receipt.succeeded) == (start, True)
    rows = await _ledger_rows(sessions)
    assert [(row.nonce, row.outcome) for row in rows] == [
        (start, "dropped"),
        (start, "succeeded"),
        (start + 1, "dropped"),
    ]


async def test_a_stale_chain_count_never_gives_a_settled_nonce_again(
    fresh_chain: AnvilNode, client: ChainClient, sessions
):
    """The count read before the lock may predate another replica's transaction that has been
    mined and settled since: the ledger asks again before it believes the chain lost it."""
    key = TransactionKey(fresh_chain.accounts[5].private_key)
    first, _ = await replica_sender(client, sessions, key).send_and_wait(
        to=fresh_chain.accounts[6].address, data=b"", value=1
    )
    answers = iter([first.nonce, first.nonce + 1])  # asked before it was mined, then again

    async def stale_then_current() -> int:
        return next(answers)

    ledger = PostgresTxLedger(sessions, chain_id=fresh_chain.chain_id, sender=key.address)
    draft = TxDraft(to=first.to, data=b"", value=1, gas=21_000, fees=first.fees)
    sent = await ledger.issue(
        draft, chain_count=stale_then_current, sign=lambda _: (b"\x02", "0x" + "ab" * 32)
    )
    assert sent.nonce == first.nonce + 1
    assert [(row.nonce, row.outcome) for row in await _ledger_rows(sessions)] == [
        (first.nonce, "succeeded"),
        (first.nonce + 1, None),
    ]
