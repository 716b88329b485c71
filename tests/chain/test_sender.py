"""TransactionSender on anvil: nonces under concurrency, resync, fees, stuck-transaction replacement."""

from __future__ import annotations

import asyncio
import pickle

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from structlog.testing import capture_logs

from bookme.embedded.anvil import AnvilNode
from chain.client import ChainClient
from chain.errors import RpcError, TransactionDropped
from chain.keys import InvalidKeyError, TransactionKey
from chain.sender import SenderConfig, TransactionSender
from tests.chain.conftest import sender_for
from tests.chain.rpc_proxy import FaultyRpcProxy, Mode

pytestmark = pytest.mark.integration


async def test_concurrent_sends_get_distinct_contiguous_nonces(
    fresh_chain: AnvilNode, client: ChainClient
):
    sender = sender_for(client, fresh_chain, 5)
    recipient = fresh_chain.accounts[6].address
    start = await client.get_transaction_count(sender.address, "latest")
    before = await client.get_balance(recipient)
    results = await asyncio.gather(
        *(sender.send_and_wait(to=recipient, data=b"", value=1_000 + i) for i in range(12))
    )
    nonces = sorted(sent.nonce for sent, _ in results)
    assert nonces == list(range(start, start + 12))
    assert all(receipt.succeeded for _, receipt in results)
    assert len({receipt.tx_hash for _, receipt in results}) == 12
    assert await client.get_balance(recipient) == before + sum(1_000 + i for i in range(12))


async def test_nonce_cache_resyncs_after_an_outside_transaction(
    fresh_chain: AnvilNode, client: ChainClient
):
    sender = sender_for(client, fresh_chain, 5)
    account = fresh_chain.accounts[5].address
    recipient = fresh_chain.accounts[6].address
    first, _ = await sender.send_and_wait(to=recipient, data=b"", value=1)
    # Another process with the same key (anvil's unlocked account) takes the next nonce.
    fresh_chain.rpc("eth_sendTransaction", {"from": account, "to": recipient, "value": "0x1"})
    with pytest.raises(RpcError, match="nonce"):
        await sender.send(to=recipient, data=b"", value=1, gas=21_000)
    again, receipt = await sender.send_and_wait(to=recipient, data=b"", value=1)
    assert again.nonce == first.nonce + 2
    assert receipt.succeeded


async def test_eip1559_fees_follow_the_base_fee(fresh_chain: AnvilNode, client: ChainClient):
    sender = sender_for(client, fresh_chain, 5, min_priority_fee_wei=7)
    head = await client.get_block("latest")
    assert head is not None
    assert head.base_fee_per_gas is not None
    quote = await sender.estimate_fees()
    history = await client.fee_history(1, "latest", [50.0])
    assert quote.max_priority_fee_per_gas >= 7
    assert quote.max_fee_per_gas == 2 * history.next_base_fee + quote.max_priority_fee_per_gas
    # A cap that still covers the next base fee and the tip lowers the fee cap to it (less
    # headroom, still includable); below that nothing is signed (tests/chain/test_fee_cap.py).
    cap = history.next_base_fee + quote.max_priority_fee_per_gas
    capped = await sender_for(
        client, fresh_chain, 5, max_fee_per_gas_cap=cap, min_priority_fee_wei=7
    ).estimate_fees()
    assert capped.max_fee_per_gas == cap < quote.max_fee_per_gas
    assert capped.max_priority_fee_per_gas == quote.max_priority_fee_per_gas


async def test_gas_estimate_has_headroom(fresh_chain: AnvilNode, client: ChainClient):
    sender = sender_for(client, fresh_chain, 5, gas_headroom_bps=5_000)
    gas = await sender.estimate_gas(to=fresh_chain.accounts[6].address, data=b"", value=1)
    assert gas == 31_500


async def test_stuck_transaction_is_replaced_with_bumped_fees(
    fresh_chain: AnvilNode, client: ChainClient
):
    sender = sender_for(
        client, fresh_chain, 5, replace_after_seconds=0.1, poll_interval_seconds=0.02
    )
    recipient = fresh_chain.accounts[6].address
    fresh_chain.rpc("evm_setAutomine", False)
    try:
        sent = await sender.send(to=recipient, data=b"", value=5)
        first_hash, first_fees = sent.tx_hash, sent.fees
        with capture_logs() as logs:
            waiter = asyncio.create_task(sender.wait(sent))
            while sent.replacements < 1:  # noqa: ASYNC110 - polls the sender's own state
                await asyncio.sleep(0.02)
            fresh_chain.rpc("evm_mine")
            receipt = await asyncio.wait_for(waiter, 30)
    finally:
        fresh_chain.rpc("evm_setAutomine", True)
    assert receipt.succeeded
    assert receipt.tx_hash in sent.hashes[1:]
    assert await client.get_transaction_receipt(first_hash) is None
    assert sent.fees.max_priority_fee_per_gas >= first_fees.max_priority_fee_per_gas * 1.1
    assert sent.fees.max_fee_per_gas >= first_fees.max_fee_per_gas * 1.1
    mined = await client.get_transaction(receipt.tx_hash)
    assert mined is not None
    assert int(mined["nonce"], 16) == sent.nonce
    assert any(entry["event"] == "tx_replaced" for entry in logs)


async def test_waits_for_confirmations(fresh_chain: AnvilNode, client: ChainClient):
    sender = sender_for(client, fresh_chain, 5, poll_interval_seconds=0.02)
    sent = await sender.send(to=fresh_chain.accounts[6].address, data=b"", value=1)
    waiter = asyncio.create_task(sender.wait(sent, confirmations=2))  # 2 blocks on top
    await asyncio.sleep(0.1)
    assert not waiter.done()
    fresh_chain.rpc("anvil_mine", "0x2")
    receipt = await asyncio.wait_for(waiter, 30)
    assert await client.block_number() - receipt.block_number >= 2


def test_keys_never_show_in_reprs_or_errors(fresh_chain: AnvilNode):
    secret = fresh_chain.accounts[5].private_key
    key = TransactionKey(SecretStr(secret))
    assert key.address == fresh_chain.accounts[5].address
    client = ChainClient([fresh_chain.http_url])
    sender = TransactionSender(client, key, chain_id=31337, config=SenderConfig())
    for text in (repr(key), str(key), repr(sender)):
        assert secret[2:] not in text.lower()
        assert fresh_chain.accounts[5].address in text
    with pytest.raises(InvalidKeyError) as caught:
        TransactionKey("0x" + "zz" * 32)
    assert "zz" not in str(caught.value)
    with pytest.raises(TypeError):
        pickle.dumps(key)


async def test_a_nonce_taken_by_another_transaction_is_reported(
    fresh_chain: AnvilNode, client: ChainClient
):
    sender = sender_for(client, fresh_chain, 5, poll_interval_seconds=0.02)
    account = fresh_chain.accounts[5].address
    recipient = fresh_chain.accounts[6].address
    fresh_chain.rpc("evm_setAutomine", False)
    try:
        sent = await sender.send(to=recipient, data=b"", value=5)
        # Someone else holding the key replaces it in the mempool with a richer transaction.
        fresh_chain.rpc(
            "eth_sendTransaction",
            {
                "from": account,
                "to": recipient,
                "value": "0x9",
                "nonce": hex(sent.nonce),
                "maxFeePerGas": hex(sent.fees.max_fee_per_gas * 3),
                "maxPriorityFeePerGas": hex(sent.fees.max_priority_fee_per_gas * 3),
            },
        )
        fresh_chain.rpc("evm_mine")
    finally:
        fresh_chain.rpc("evm_setAutomine", True)
    with pytest.raises(TransactionDropped, match=f"nonce {sent.nonce}"):
        await asyncio.wait_for(sender.wait(sent), 30)


async def test_sender_metrics(fresh_chain: AnvilNode, client: ChainClient):
    registry = CollectorRegistry()
    sender = TransactionSender(
        client,
        TransactionKey(fresh_chain.accounts[5].private_key),
        chain_id=31337,
        config=SenderConfig(poll_interval_seconds=0.02),
        registry=registry,
    )
    for _ in range(2):
        await sender.send_and_wait(to=fresh_chain.accounts[6].address, data=b"", value=1)
    labels = {"sender": sender.address}
    assert registry.get_sample_value("bookme_tx_sent_total", labels) == 2
    assert (
        registry.get_sample_value("bookme_tx_confirmed_total", {**labels, "outcome": "succeeded"})
        == 2
    )


async def test_waiting_survives_every_provider_failing_for_a_while(fresh_chain: AnvilNode):
    proxy = FaultyRpcProxy(fresh_chain.http_url)
    await proxy.start()
    try:
        async with ChainClient(
            [proxy.url], cooldown_seconds=0.05, backoff_initial=0.01, max_attempts=2
        ) as flaky:
            sender = sender_for(flaky, fresh_chain, 5, poll_interval_seconds=0.02)
            fresh_chain.rpc("evm_setAutomine", False)
            try:
                sent = await sender.send(to=fresh_chain.accounts[6].address, data=b"", value=3)
                proxy.mode = Mode.SERVER_ERROR
                with capture_logs() as logs:
                    waiter = asyncio.create_task(sender.wait(sent))
                    while not any(e["event"] == "tx_wait_rpc_failed" for e in logs):  # noqa: ASYNC110
                        await asyncio.sleep(0.02)
                    fresh_chain.rpc("evm_mine")
                    proxy.mode = Mode.PASS
                    receipt = await asyncio.wait_for(waiter, 30)
            finally:
                fresh_chain.rpc("evm_setAutomine", True)
    finally:
        await proxy.stop()
    assert receipt.succeeded
    assert receipt.tx_hash == sent.tx_hash
