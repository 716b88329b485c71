"""ChainActivities on anvil: confirmations respected, pushed and polled identities agree."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import ChainActivities
from bookme.embedded.anvil import AnvilNode
from chain.client import ChainClient
from chain.escrow import EscrowReader
from chain.keys import TransactionKey
from chain.operator import OperatorSender
from chain.sender import SenderConfig, TransactionSender
from tests.contracts.harness import EscrowHarness
from workflows.types import (
    ChainEventKind,
    ObserveRequest,
    OnChainStatus,
    OperatorTxRequest,
    TxStatus,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def setup(fresh_chain: AnvilNode) -> AsyncIterator[tuple[EscrowHarness, ChainActivities]]:
    escrow = EscrowHarness(fresh_chain)
    async with ChainClient(
        [fresh_chain.http_url], registry=CollectorRegistry(), expected_chain_id=fresh_chain.chain_id
    ) as client:
        reader = EscrowReader(client, escrow.escrow.address)
        sender = TransactionSender(
            client,
            TransactionKey(SecretStr(escrow.roles.operator.private_key)),
            chain_id=fresh_chain.chain_id,
            config=SenderConfig(poll_interval_seconds=0.02),
        )
        yield (
            escrow,
            ChainActivities(
                client, reader, OperatorSender(sender, reader), chain_id=fresh_chain.chain_id
            ),
        )


def _tx(receipt) -> str:
    return "0x" + bytes(receipt["transactionHash"]).hex()


async def test_observe_waits_for_confirmations_then_reports_the_event(setup, fresh_chain):
    escrow, chain = setup
    env = ActivityEnvironment()
    auth = escrow.booking_auth()
    tx = _tx(escrow.pay(auth))
    request = ObserveRequest(
        booking_id="b", chain_booking_id=auth.booking_id, tx_hash=tx, confirmations=2
    )
    early = await env.run(chain.observe_booking, request)
    assert early.tx_status is TxStatus.SUCCEEDED
    assert early.onchain_status is OnChainStatus.PAID
    assert early.events == []  # mined, not yet final
    fresh_chain.rpc("anvil_mine", 2)
    late = await env.run(chain.observe_booking, request)
    (event,) = late.events
    assert event.kind is ChainEventKind.PAYMENT
    assert event.identity.tx_hash == tx
    assert event.payment is not None
    assert event.payment.amount == auth.amount
    # without the tx hash, the logs give the same identity
    by_logs = await env.run(
        chain.observe_booking,
        ObserveRequest(
            booking_id="b", chain_booking_id=auth.booking_id, tx_hash=None, confirmations=2
        ),
    )
    assert by_logs.events == [event]
    assert by_logs.tx_status is TxStatus.UNKNOWN


async def test_operator_sends_and_chain_refusals_are_final(setup):
    escrow, chain = setup
    env = ActivityEnvironment()
    unpaid = escrow.new_booking_id()
    with pytest.raises(ApplicationError) as info:
        await env.run(
            chain.send_emergency_cancel,
            OperatorTxRequest(booking_id="", chain_booking_id=unpaid, reason="emergency_refund"),
        )
    assert info.value.type == "ChainRejected"
    assert info.value.non_retryable

    paid = escrow.paid_booking()
    with pytest.raises(ApplicationError) as info:
        await env.run(
            chain.send_complete_service, OperatorTxRequest(booking_id="", chain_booking_id=paid)
        )
    assert info.value.type == "ChainRejected"
    assert "ReleaseTimeNotReached" in info.value.message

    sent = await env.run(
        chain.send_emergency_cancel,
        OperatorTxRequest(booking_id="", chain_booking_id=paid, reason="emergency_refund"),
    )
    assert sent.tx_hash is not None
    again = await env.run(
        chain.send_emergency_cancel,
        OperatorTxRequest(booking_id="", chain_booking_id=paid, reason="emergency_refund"),
    )
    assert again.tx_hash is None  # already final on chain: nothing sent twice
    assert again.already_final_as == "CANCELLED"
    assert escrow.booking(paid)[0] == 3  # Cancelled


async def test_observe_reads_the_chains_clock_at_the_newest_confirmed_block(setup, fresh_chain):
    escrow, chain = setup
    env = ActivityEnvironment()
    unpaid = escrow.new_booking_id()
    # A clock the chain keeps apart from ours: an hour ahead, then blocks 5 s apart.
    fresh_chain.rpc("evm_increaseTime", 3600)
    fresh_chain.rpc("anvil_mine", 3, 5)
    request = ObserveRequest(booking_id="b", chain_booking_id=unpaid, tx_hash=None, confirmations=2)
    plain = await env.run(chain.observe_booking, request)
    assert plain.final_block_timestamp is None  # only the final checks pay for the extra read
    timed = await env.run(chain.observe_booking, replace(request, chain_time=True))
    head = int(fresh_chain.rpc("eth_blockNumber"), 16)
    final = fresh_chain.rpc("eth_getBlockByNumber", hex(head - 2), False)
    assert timed.final_block_timestamp == int(final["timestamp"], 16)
    newest = fresh_chain.rpc("eth_getBlockByNumber", hex(head), False)
    assert timed.final_block_timestamp < int(newest["timestamp"], 16)  # not the unconfirmed head
    assert timed.onchain_status is OnChainStatus.NONE
    assert timed.final_block_timestamp > time.time() + 3000  # the chain's clock, not ours
