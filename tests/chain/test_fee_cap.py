"""The operator's max fee cap on a real chain: above it nothing is signed or broadcast."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from bookme.embedded.anvil import AnvilNode
from chain.client import ChainClient
from chain.errors import FeeCapExceeded
from chain.keys import TransactionKey
from chain.sender import SenderConfig, TransactionSender

pytestmark = pytest.mark.integration

GWEI = 10**9


async def test_a_send_above_the_cap_is_refused_and_goes_through_once_fees_fall(
    fresh_chain: AnvilNode, client: ChainClient
) -> None:
    registry = CollectorRegistry()
    key = TransactionKey(fresh_chain.accounts[5].private_key)
    sender = TransactionSender(
        client,
        key,
        chain_id=fresh_chain.chain_id,
        config=SenderConfig(poll_interval_seconds=0.02, max_fee_per_gas_cap=50 * GWEI),
        registry=registry,
    )
    recipient = fresh_chain.accounts[6].address
    fresh_chain.rpc("anvil_setNextBlockBaseFeePerGas", hex(400 * GWEI))
    fresh_chain.rpc("evm_mine")
    pending = await client.get_transaction_count(key.address, "pending")

    with pytest.raises(FeeCapExceeded, match="cap") as refused:
        await sender.send(to=recipient, data=b"", value=1)
    assert refused.value.cap == 50 * GWEI
    assert refused.value.needed > 50 * GWEI
    # Nothing signed, nothing broadcast: no nonce is taken, nothing waits in the mempool.
    assert await client.get_transaction_count(key.address, "pending") == pending
    refusals = registry.get_sample_value(
        "bookme_tx_fee_cap_refusals_total", {"sender": key.address}
    )
    assert refusals == 1

    # The market calms down: the same call now goes through, never above the cap.
    fresh_chain.rpc("anvil_setNextBlockBaseFeePerGas", hex(GWEI))
    fresh_chain.rpc("evm_mine")
    sent, receipt = await sender.send_and_wait(to=recipient, data=b"", value=1)
    assert receipt.succeeded
    assert sent.nonce == pending
    mined = await client.get_transaction(receipt.tx_hash)
    assert mined is not None
    assert int(mined["maxFeePerGas"], 16) <= 50 * GWEI
