"""A refund above the operator's fee cap: the activity fails retryably, sends nothing, and the
retry after the gas price falls refunds the booking once."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from temporalio.testing import ActivityEnvironment

from activities import ChainActivities
from bookme.embedded.anvil import AnvilNode
from chain.client import ChainClient
from chain.errors import FeeCapExceeded
from chain.escrow import EscrowReader
from chain.keys import TransactionKey
from chain.operator import OperatorSender
from chain.sender import SenderConfig, TransactionSender
from tests.contracts.harness import EscrowHarness
from workflows.constants import NON_RETRYABLE_ERROR_TYPES
from workflows.types import OperatorTxRequest

pytestmark = pytest.mark.integration

GWEI = 10**9


async def test_a_refund_above_the_cap_is_retried_later_not_lost(fresh_chain: AnvilNode) -> None:
    escrow = EscrowHarness(fresh_chain)
    paid = escrow.paid_booking()
    operator = escrow.roles.operator.address
    async with ChainClient(
        [fresh_chain.http_url], registry=CollectorRegistry(), expected_chain_id=fresh_chain.chain_id
    ) as client:
        reader = EscrowReader(client, escrow.escrow.address)
        sender = TransactionSender(
            client,
            TransactionKey(SecretStr(escrow.roles.operator.private_key)),
            chain_id=fresh_chain.chain_id,
            config=SenderConfig(poll_interval_seconds=0.02, max_fee_per_gas_cap=20 * GWEI),
        )
        chain = ChainActivities(
            client, reader, OperatorSender(sender, reader), chain_id=fresh_chain.chain_id
        )
        request = OperatorTxRequest(booking_id="", chain_booking_id=paid, reason="emergency_refund")
        env = ActivityEnvironment()
        fresh_chain.rpc("anvil_setNextBlockBaseFeePerGas", hex(300 * GWEI))
        fresh_chain.rpc("evm_mine")
        nonce = await client.get_transaction_count(operator, "pending")

        # Not an ActivityRejected: Temporal retries it (SEND_RETRY) instead of giving up.
        with pytest.raises(FeeCapExceeded):
            await env.run(chain.send_emergency_cancel, request)
        assert "FeeCapExceeded" not in NON_RETRYABLE_ERROR_TYPES
        assert await client.get_transaction_count(operator, "pending") == nonce
        assert escrow.booking(paid)[0] == 1  # still Paid: the money waits in escrow

        fresh_chain.rpc("anvil_setNextBlockBaseFeePerGas", hex(GWEI))
        fresh_chain.rpc("evm_mine")
        retried = await env.run(chain.send_emergency_cancel, request)
    assert retried.tx_hash is not None
    assert escrow.booking(paid)[0] == 3  # Cancelled: refunded once
