"""A worker killed mid-relay never leads to two payments (issue #19).

The relay activity runs as the worker runs it (its own operator sender over the Postgres
ledger), on the real stack: killed after its transaction was recorded and broadcast but
before it was mined, then retried by another worker; then retried once more after it
succeeded. One transaction, one payment, one cost row; and the chain itself refuses a second
payment of the same signatures.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from prometheus_client import CollectorRegistry
from temporalio.testing import ActivityEnvironment

from activities.relay import RelayActivities
from chain.escrow import OnChainBookingStatus
from chain.transfer_auth import (
    TransferAuthorization,
    read_token_domain,
    relayed_payment_tx,
    simulate_relayed_payment,
    transfer_authorization,
)
from tests.api.relay_stack import (
    CUSTOMER,
    FUNDS,
    RelayStack,
    ask_transfer,
    relay_chain,
    relay_stack,
    sign_typed_data,
)
from worker import operator_sender, relay_activities
from workflows.client import BookingClient
from workflows.errors import RelayRefused
from workflows.relay_terms import booking_authorization, transfer_terms
from workflows.types.relay import RelayTxRequest

pytestmark = pytest.mark.integration
__all__ = ["relay_chain", "relay_stack"]  # fixtures

GUARD_SECONDS = 90  # against a hung test only


def worker_replica(stack: RelayStack, registry: CollectorRegistry) -> RelayActivities:
    """The relay activity as another worker process builds it: its own sender, the shared ledger."""
    escrow = stack.escrow
    operator = operator_sender(stack.settings, stack.chain, escrow, stack.sessions, registry)
    return relay_activities(stack.settings, stack.chain, escrow, operator, stack.sessions, registry)


async def signed_relay(stack: RelayStack, booking_id: str) -> RelayTxRequest:
    """What the workflow hands the relay activity once the customer signed the transfer."""
    transfer = (await ask_transfer(stack.api, booking_id))["transferAuthorization"]
    auth = (
        await BookingClient.for_booking(stack.temporal, booking_id).status()
    ).payment_authorization
    assert auth is not None
    return RelayTxRequest(
        booking_id=booking_id,
        authorization=auth,
        signature=sign_typed_data(transfer["typedData"]),
        valid_after=int(transfer["validAfter"]),
        valid_before=int(transfer["validBefore"]),
    )


async def test_a_relay_killed_after_broadcast_is_resumed_by_another_worker_never_sent_twice(
    relay_stack: RelayStack,
) -> None:
    stack = relay_stack
    async with asyncio.timeout(GUARD_SECONDS):
        request = await signed_relay(stack, await stack.create_booking(amount="40"))
        auth = request.authorization
        nonce = await stack.operator_nonce()

        stack.anvil.rpc("evm_setAutomine", False)  # broadcast, never mined while it runs
        first = worker_replica(stack, CollectorRegistry())
        killed = asyncio.create_task(ActivityEnvironment().run(first.relay_payment, request))
        while await stack.operator_nonce() == nonce:  # noqa: ASYNC110 - the node's mempool
            await asyncio.sleep(0.05)
        killed.cancel()  # the worker dies with its transaction recorded and in the mempool
        with contextlib.suppress(asyncio.CancelledError):
            await killed
        assert await stack.ledger_rows() == 1

        registry = CollectorRegistry()
        resumed = asyncio.create_task(
            ActivityEnvironment().run(worker_replica(stack, registry).relay_payment, request)
        )
        await asyncio.sleep(0.5)  # the retry finds the recorded transaction and waits on it
        stack.anvil.rpc("evm_mine")
        result = await resumed

        assert await stack.operator_nonce() == nonce + 1
        assert await stack.ledger_rows() == 1
        receipt = await stack.chain.get_transaction_receipt(result.tx_hash)
        assert receipt is not None
        assert receipt.succeeded
        assert (await stack.escrow.get_booking(auth.chain_booking_id)).status is (
            OnChainBookingStatus.PAID
        )
        assert await stack.escrow.usdc_balance_of(CUSTOMER) == FUNDS - 40 * 10**6
        assert registry.get_sample_value("bookme_relayed_payments_total") == 1

        # A retry after success (the answer lost on its way to Temporal) is the same relay.
        late = CollectorRegistry()
        again = await ActivityEnvironment().run(worker_replica(stack, late).relay_payment, request)
        assert again == result
        assert await stack.operator_nonce() == nonce + 1
        assert late.get_sample_value("bookme_relayed_payments_total") == 0  # cost counted once

        # Without the ledger, the chain is the last guard: the same payment cannot run twice.
        resent = relayed_payment_tx(
            stack.deployment.escrow,
            booking_authorization(auth),
            auth.signature,
            await transfer_parts(stack, request),
            relayer=stack.deployment.operator,
        )
        simulation = await simulate_relayed_payment(stack.chain, resent)
        assert not simulation.ok
        assert simulation.error_name == "BookingAlreadyExists"


async def transfer_parts(stack: RelayStack, request: RelayTxRequest) -> TransferAuthorization:
    """The contract's TransferAuthorization of the request (the customer's v, r, s)."""
    token = await read_token_domain(stack.chain, stack.deployment.usdc)
    terms = transfer_terms(
        request.authorization, valid_after=request.valid_after, valid_before=request.valid_before
    )
    return transfer_authorization(token, terms, request.signature)


async def test_a_relay_needing_more_gas_than_the_cap_is_refused_before_anything_is_sent(
    relay_stack: RelayStack,
) -> None:
    stack = relay_stack
    async with asyncio.timeout(GUARD_SECONDS):
        request = await signed_relay(stack, await stack.create_booking())
        nonce = await stack.operator_nonce()
        capped = stack.settings.model_copy(update={"relay_max_gas": 50_000})
        escrow = stack.escrow
        registry = CollectorRegistry()
        operator = operator_sender(capped, stack.chain, escrow, stack.sessions, registry)
        relay = relay_activities(capped, stack.chain, escrow, operator, stack.sessions, registry)
        with pytest.raises(RelayRefused) as refused:
            await ActivityEnvironment().run(relay.relay_payment, request)
        assert refused.value.code == "relay_gas_cap"
        assert (
            registry.get_sample_value("bookme_relay_refusals_total", {"code": "relay_gas_cap"}) == 1
        )
        assert await stack.operator_nonce() == nonce
        assert await stack.ledger_rows() == 0
