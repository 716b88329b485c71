"""``bookme emergency-cancel`` when the workflow cannot refund: the escape hatch on the real
stack (worker, Postgres, Temporal, anvil). The chain is read first, so a rerun never sends twice;
the operator's name and words stay in Postgres, the chain sees only the reason code."""

from __future__ import annotations

import uuid

import pytest

from activities.reconcile.logs import read_escrow_events
from bookme.settings import Settings
from chain.events import BookingCancelled
from chain.reason_codes import OnChainReason
from tests.conftest import TemporalService
from tests.ops.conftest import run_cli
from tests.reconcile.conftest import Rig, rig, wait_for  # noqa: F401 - the fixture
from workflows.types import BookingStatus

CANCELLED_ON_CHAIN = 3
USDC = 10**6


@pytest.fixture
def settings(rig: Rig, temporal: TemporalService) -> Settings:  # noqa: F811 - the fixture above
    return rig.settings.model_copy(
        update={"temporal_address": temporal.address, "temporal_namespace": temporal.namespace}
    )


async def _operator_nonce(rig: Rig) -> int:  # noqa: F811
    return await rig.chain.get_transaction_count(rig.escrow.roles.operator.address, "latest")


async def _audit(rig: Rig, booking_id: str) -> list[tuple[object, ...]]:  # noqa: F811
    rows = await rig.sql(
        "SELECT actor, reason, tx_hash, from_status, to_status FROM booking_events"
        " WHERE booking_id = :id AND kind = 'operator_refund'",
        id=uuid.UUID(booking_id),
    )
    return [tuple(row) for row in rows]


async def _onchain_reasons(rig: Rig, chain_booking_id: str) -> list[str]:  # noqa: F811
    events = await read_escrow_events(
        rig.chain,
        rig.reader.address,
        chain_id=rig.settings.chain_id,
        from_block=0,
        to_block=await rig.chain.block_number(),
        chain_booking_id=chain_booking_id,
    )
    return [e.reason for e in events if isinstance(e, BookingCancelled)]


async def test_a_paid_booking_whose_workflow_was_terminated_is_refunded_once_and_audited(
    rig: Rig,  # noqa: F811
    settings: Settings,
):
    booking, handle = await rig.paid()
    await handle.terminate(reason="test: the workflow is gone")
    nonce = await _operator_nonce(rig)
    argv = (
        "emergency-cancel",
        booking.booking_id,
        "--reason",
        "provider gone",
        "--operator",
        "ops",
    )

    first = await run_cli(settings, *argv)

    assert first.code == 0, first.out
    assert "refunded on chain, tx 0x" in first.out
    assert rig.escrow.booking(booking.chain_booking_id)[0] == CANCELLED_ON_CHAIN
    assert await _operator_nonce(rig) == nonce + 1
    [(actor, reason, tx_hash, before, after)] = await _audit(rig, booking.booking_id)
    assert (actor, before, after) == ("operator:ops", "PAID", "CANCELLED")
    assert "ops" in str(reason)
    assert "provider gone" in str(reason)
    assert str(tx_hash) in first.out
    assert await rig.db_status(booking.booking_id) == "CANCELLED"
    refunds = await rig.sql(
        "SELECT customer_amount_units, emergency, tx_hash FROM refunds WHERE booking_id = :id",
        id=uuid.UUID(booking.booking_id),
    )
    assert [tuple(r) for r in refunds] == [(booking.amount_units, True, tx_hash)]
    event_rows = await rig.sql(
        "SELECT status FROM blockchain_events WHERE tx_hash = :tx", tx=str(tx_hash)
    )
    assert [r[0] for r in event_rows] == ["PROCESSED"]
    # Free text stays off chain: only the code is public.
    assert await _onchain_reasons(rig, booking.chain_booking_id) == [OnChainReason.EMERGENCY_REFUND]

    second = await run_cli(settings, *argv)

    assert second.code == 0, second.out
    assert "CANCELLED on chain: nothing to refund, nothing sent" in second.out
    assert await _operator_nonce(rig) == nonce + 1
    assert len(await _audit(rig, booking.booking_id)) == 1


async def test_an_open_workflow_that_refuses_gets_the_refund_sent_around_it_and_audited(
    rig: Rig,  # noqa: F811
    settings: Settings,
):
    # Paid on chain, but the workflow has not heard: it refuses (no escrowed money it knows of).
    booking, handle, auth = await rig.authorized()
    block = rig.pay(auth)

    result = await run_cli(
        settings, "emergency-cancel", booking.booking_id, "--reason", "fraud", "--operator", "ops"
    )

    assert result.code == 0, result.out
    assert "the workflow did not refund" in result.out
    assert rig.escrow.booking(booking.chain_booking_id)[0] == CANCELLED_ON_CHAIN
    [(actor, _, tx_hash, before, after)] = await _audit(rig, booking.booking_id)
    # The open workflow owns the status: the audit row records the refund, no transition.
    assert (actor, before, after) == ("operator:ops", "PENDING_PAYMENT", "PENDING_PAYMENT")
    assert str(tx_hash) in result.out
    # ... and the workflow applies both chain events when the listener delivers them.
    await rig.deliver(block)
    await wait_for(lambda: rig.status_of(handle), BookingStatus.CANCELLED)
    assert await rig.db_status(booking.booking_id) == "CANCELLED"


async def test_an_orphan_payment_is_refunded_and_recorded_on_its_event_rows(
    rig: Rig,  # noqa: F811
    settings: Settings,
):
    chain_booking_id = rig.escrow.paid_booking()  # no booking row, no workflow
    nonce = await _operator_nonce(rig)

    result = await run_cli(
        settings,
        "emergency-cancel",
        chain_booking_id,
        "--reason",
        "unknown payer",
        "--operator",
        "ops",
    )

    assert result.code == 0, result.out
    assert rig.escrow.booking(chain_booking_id)[0] == CANCELLED_ON_CHAIN
    rows = await rig.sql(
        "SELECT event_type, status, status_reason FROM blockchain_events"
        " WHERE chain_booking_id = :id ORDER BY block_number, log_index",
        id=chain_booking_id.lower(),
    )
    assert [(r[0], r[1]) for r in rows] == [
        ("BookingCreatedAndPaid", "PROCESSED"),
        ("BookingCancelled", "PROCESSED"),
    ]
    assert "ops" in str(rows[0][2])
    assert "unknown payer" in str(rows[0][2])
    again = await run_cli(
        settings, "emergency-cancel", chain_booking_id, "--reason", "again", "--operator", "ops"
    )
    assert again.code == 0
    assert await _operator_nonce(rig) == nonce + 1
