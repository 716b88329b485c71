"""EscrowReader and OperatorSender against the real contract: idempotent complete/cancel."""

from __future__ import annotations

import asyncio

import pytest

from chain.client import ChainClient
from chain.errors import BookingStateError, ExecutionReverted, InvalidReason
from chain.escrow import EscrowReader, FeePolicy, OnChainBookingStatus
from chain.events import (
    ESCROW_EVENT_TOPICS,
    BookingCancelled,
    BookingCreatedAndPaid,
    ServiceCompleted,
    decode_escrow_logs,
    decode_log,
)
from chain.operator import OperatorAction, OperatorSender, OperatorTxStatus
from chain.reason_codes import OnChainReason
from tests.chain.conftest import sender_for
from tests.contracts.harness import DEFAULT_AMOUNT, RELEASE_DELAY, EscrowHarness

pytestmark = pytest.mark.integration

OPERATOR_INDEX = 2  # EscrowHarness roles: owner, signer, operator, ...


def operator_for(client: ChainClient, escrow: EscrowHarness) -> OperatorSender:
    assert escrow.node.accounts[OPERATOR_INDEX] == escrow.roles.operator
    sender = sender_for(client, escrow.node, OPERATOR_INDEX)
    return OperatorSender(sender, EscrowReader(client, escrow.escrow.address))


async def operator_nonce(client: ChainClient, escrow: EscrowHarness) -> int:
    return await client.get_transaction_count(escrow.roles.operator.address, "latest")


async def test_reader_mirrors_the_contract(client: ChainClient, escrow: EscrowHarness):
    reader = EscrowReader(client, escrow.escrow.address)
    auth = escrow.booking_auth(with_inviter=True)
    escrow.pay(auth)
    booking_id = auth.booking_id
    booking = await reader.get_booking(booking_id)
    r = escrow.roles
    assert booking.booking_id == booking_id
    assert booking.status is OnChainBookingStatus.PAID
    assert (booking.customer, booking.provider, booking.inviter) == (
        r.customer.address,
        r.provider.address,
        r.inviter.address,
    )
    assert booking.amount == DEFAULT_AMOUNT
    assert booking.platform_fee == booking.inviter_fee == DEFAULT_AMOUNT * 500 // 10_000
    assert booking.provider_amount == DEFAULT_AMOUNT - 2 * booking.platform_fee
    assert booking.release_time == auth.release_time
    assert booking.paid_at == escrow.now()
    assert tuple(escrow.booking(booking_id)) == (
        int(booking.status),
        booking.customer,
        booking.provider,
        booking.inviter,
        booking.amount,
        booking.platform_fee,
        booking.inviter_fee,
        booking.provider_amount,
        booking.release_time,
        booking.paid_at,
    )
    unknown = await reader.get_booking("0x" + "42" * 32)
    assert unknown.status is OnChainBookingStatus.NONE
    assert unknown.amount == 0
    assert await reader.fee_policy() == FeePolicy(
        platform_fee_bps=1000, platform_fee_with_inviter_bps=500, inviter_fee_bps=500
    )
    assert await reader.paused() is False
    assert await reader.total_owed() == 0
    assert await reader.owed_balance(r.provider.address) == 0
    assert await reader.usdc_address() == escrow.usdc.address
    assert await reader.usdc_balance_of(r.customer.address) == escrow.balance(r.customer.address)
    assert await reader.usdc_balance_of(escrow.escrow.address) == DEFAULT_AMOUNT
    assert await reader.signer() == r.signer.address
    assert await reader.operator() == r.operator.address
    domain = await reader.eip712_domain()
    assert (domain.name, domain.version, domain.chain_id, domain.verifying_contract) == (
        "BookingEscrow",
        "1",
        31337,
        escrow.escrow.address,
    )


async def test_events_from_anvil_decode_like_web3(client: ChainClient, escrow: EscrowHarness):
    auth = escrow.booking_auth(with_inviter=True)
    receipt = escrow.pay(auth)
    logs = await client.get_logs(
        from_block=receipt["blockNumber"],
        to_block="latest",
        address=escrow.escrow.address,
        topics=[list(ESCROW_EVENT_TOPICS)],
    )
    assert len(logs) == 1
    event = decode_log(logs[0], 31337)
    assert isinstance(event, BookingCreatedAndPaid)
    expected = escrow.events(receipt, "BookingCreatedAndPaid")[0]
    assert event.booking_id == auth.booking_id
    assert (event.customer, event.provider, event.inviter) == (
        expected["customer"],
        expected["provider"],
        expected["inviter"],
    )
    assert (event.amount, event.platform_fee_rate, event.inviter_fee_rate) == (
        expected["amount"],
        expected["platformFeeRate"],
        expected["inviterFeeRate"],
    )
    assert event.identity.tx_hash == "0x" + receipt["transactionHash"].hex().removeprefix("0x")
    assert event.identity.log_index == receipt["logs"][-1]["logIndex"]
    assert event.position.block_hash == "0x" + receipt["blockHash"].hex().removeprefix("0x")


async def test_complete_service_is_idempotent(client: ChainClient, escrow: EscrowHarness):
    operator = operator_for(client, escrow)
    booking_id = escrow.paid_booking()
    nonce = await operator_nonce(client, escrow)

    # Before the release time the contract refuses the operator: no transaction is sent.
    with pytest.raises(ExecutionReverted) as caught:
        await operator.complete_service(booking_id)
    assert caught.value.error_name == "ReleaseTimeNotReached"
    assert await operator_nonce(client, escrow) == nonce

    escrow.travel(RELEASE_DELAY + 1)
    provider_before = escrow.balance(escrow.roles.provider.address)
    results = await asyncio.gather(*(operator.complete_service(booking_id) for _ in range(3)))
    assert len(set(results)) == 1  # concurrent callers share one transaction
    result = results[0]
    assert result.status is OperatorTxStatus.MINED
    assert result.action is OperatorAction.COMPLETE_SERVICE
    assert result.booking_status is OnChainBookingStatus.COMPLETED
    assert result.gas_used is not None
    assert result.gas_used > 21_000
    assert await operator_nonce(client, escrow) == nonce + 1
    assert (
        escrow.balance(escrow.roles.provider.address) == provider_before + DEFAULT_AMOUNT * 9 // 10
    )

    tx_receipt = await client.get_transaction_receipt(result.tx_hash or "")
    assert tx_receipt is not None
    assert tx_receipt.block_number == result.block_number
    events = decode_escrow_logs(tx_receipt.logs, 31337, contract=escrow.escrow.address)
    assert [type(e) for e in events] == [ServiceCompleted]

    again = await operator.complete_service(booking_id)
    assert again.status is OperatorTxStatus.ALREADY_DONE
    assert again.booking_status is OnChainBookingStatus.COMPLETED
    assert again.tx_hash is None
    assert await operator_nonce(client, escrow) == nonce + 1


async def test_emergency_cancel_refunds_once(client: ChainClient, escrow: EscrowHarness):
    operator = operator_for(client, escrow)
    booking_id = escrow.paid_booking()
    customer_before = escrow.balance(escrow.roles.customer.address)
    nonce = await operator_nonce(client, escrow)

    first, second = await asyncio.gather(
        operator.emergency_cancel(booking_id, OnChainReason.ORPHAN_REFUND),
        operator.emergency_cancel(booking_id, OnChainReason.ORPHAN_REFUND),
    )
    assert first == second
    assert first.status is OperatorTxStatus.MINED
    assert first.booking_status is OnChainBookingStatus.CANCELLED
    assert escrow.balance(escrow.roles.customer.address) == customer_before + DEFAULT_AMOUNT
    assert await operator_nonce(client, escrow) == nonce + 1

    receipt = await client.get_transaction_receipt(first.tx_hash or "")
    assert receipt is not None
    (event,) = decode_escrow_logs(receipt.logs, 31337, contract=escrow.escrow.address)
    assert isinstance(event, BookingCancelled)
    assert event.cancelled_by == escrow.roles.operator.address
    assert (event.customer_amount, event.provider_amount, event.reason) == (
        DEFAULT_AMOUNT,
        0,
        "orphan_refund",
    )

    # Any later operator action on the final booking sends nothing.
    for action in (
        operator.emergency_cancel(booking_id, OnChainReason.REFUND_RESENT),
        operator.complete_service(booking_id),
    ):
        result = await action
        assert result.status is OperatorTxStatus.ALREADY_DONE
        assert result.booking_status is OnChainBookingStatus.CANCELLED
    assert await operator_nonce(client, escrow) == nonce + 1


async def test_completed_elsewhere_is_already_done(client: ChainClient, escrow: EscrowHarness):
    operator = operator_for(client, escrow)
    booking_id = escrow.paid_booking()
    escrow.complete(booking_id, escrow.roles.customer)
    result = await operator.emergency_cancel(booking_id, OnChainReason.EMERGENCY_REFUND)
    assert result.status is OperatorTxStatus.ALREADY_DONE
    assert result.booking_status is OnChainBookingStatus.COMPLETED


async def test_unpaid_booking_is_refused_without_a_transaction(
    client: ChainClient, escrow: EscrowHarness
):
    operator = operator_for(client, escrow)
    nonce = await operator_nonce(client, escrow)
    with pytest.raises(BookingStateError, match="not paid"):
        await operator.emergency_cancel("0x" + "99" * 32, OnChainReason.ORPHAN_REFUND)
    assert await operator_nonce(client, escrow) == nonce


@pytest.mark.parametrize(
    "reason", ["refund requested by alice@example.com (ticket 4711)", "orphan", "x" * 33]
)
async def test_a_reason_that_is_not_a_code_is_refused_before_anything_is_sent(
    client: ChainClient, escrow: EscrowHarness, reason: str
):
    operator = operator_for(client, escrow)
    booking_id = escrow.paid_booking()
    nonce = await operator_nonce(client, escrow)
    with pytest.raises(InvalidReason, match="not an on-chain reason code"):
        await operator.emergency_cancel(booking_id, reason)
    assert await operator_nonce(client, escrow) == nonce
    assert escrow.booking(booking_id)[0] == 1  # still PAID


async def test_a_pending_transaction_from_before_a_restart_is_awaited_not_repeated(
    client: ChainClient, escrow: EscrowHarness
):
    booking_id = escrow.paid_booking()
    escrow.travel(RELEASE_DELAY + 1)
    before_crash = operator_for(client, escrow)
    escrow.node.rpc("evm_setAutomine", False)
    try:
        sent = await before_crash.sender.send(
            to=escrow.escrow.address,
            data=before_crash.escrow.contract.abi.encode_call(
                "completeService", bytes.fromhex(booking_id[2:])
            ),
        )
        # The process died here; its replacement is asked to complete the same booking.
        after_restart = operator_for(client, escrow)
        retry = asyncio.create_task(after_restart.complete_service(booking_id))
        await asyncio.sleep(0.2)
        assert not retry.done()
        escrow.node.rpc("evm_mine")
        result = await asyncio.wait_for(retry, 30)
    finally:
        escrow.node.rpc("evm_setAutomine", True)
    assert result.status is OperatorTxStatus.ALREADY_DONE
    assert result.booking_status is OnChainBookingStatus.COMPLETED
    receipt = await client.get_transaction_receipt(sent.tx_hash)
    assert receipt is not None
    assert receipt.succeeded
    assert await operator_nonce(client, escrow) == sent.nonce + 1
