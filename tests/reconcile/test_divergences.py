"""Each divergence of issue #7 injected on the real stack, then found and repaired (or reported)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest

from activities.reconcile.invariants import check_invariants
from chain.eip712 import BookingAuthorization, Eip712Domain
from chain.signing import sign_booking_authorization
from workflows import BookingWorkflow
from workflows.reconcile_types import (
    DivergenceKind,
    InvariantName,
    ReconcileAction,
)
from workflows.types import (
    BookingStatus,
    PaymentAuthorization,
    RedriveRequest,
)

from .conftest import USDC, Rig, update, wait_for

pytestmark = pytest.mark.integration
S = BookingStatus
ALL_HOLD = {name.value: 0 for name in InvariantName}


async def _invariants(rig: Rig) -> dict[str, int]:
    report = await check_invariants(rig.sessions, rig.reader, received_grace=timedelta(0))
    return report.counts()


async def test_db_status_edited_behind_the_workflows_back_is_resynced(rig: Rig) -> None:
    paid, paid_handle = await rig.paid()
    unpaid = rig.booking()
    unpaid_handle = await rig.start(unpaid)
    await wait_for(lambda: rig.db_status(unpaid.booking_id), "PENDING_PAYMENT")
    # A terminal edit leaves the row out of the "non-terminal or touched" scan: the running
    # workflow is what reveals it. The other edit is a plain non-terminal row.
    await rig.sql(
        "UPDATE bookings SET status = 'CANCELLED' WHERE id = :id", id=uuid.UUID(paid.booking_id)
    )
    await rig.sql(
        "UPDATE bookings SET status = 'PAID' WHERE id = :id", id=uuid.UUID(unpaid.booking_id)
    )

    report = await rig.reconcile()

    assert report.counts.get(DivergenceKind.DB_DRIFT.value) == 2
    drift = {f.booking_id: f for f in report.findings if f.kind is DivergenceKind.DB_DRIFT}
    assert {f.action for f in drift.values()} == {ReconcileAction.RESYNCED}
    assert await rig.db_status(paid.booking_id) == "PAID"
    assert await rig.db_status(unpaid.booking_id) == "PENDING_PAYMENT"
    audit = await rig.sql(
        "SELECT from_status, to_status, actor FROM booking_events WHERE booking_id = :id AND kind = 'resync'",
        id=uuid.UUID(paid.booking_id),
    )
    assert [tuple(row) for row in audit] == [("CANCELLED", "PAID", "reconciler")]
    assert await rig.status_of(paid_handle) is S.PAID
    assert await rig.status_of(unpaid_handle) is S.PENDING_PAYMENT
    assert report.invariants == ALL_HOLD
    # A second run finds nothing left to repair.
    again = await rig.reconcile()
    assert again.counts.get(DivergenceKind.DB_DRIFT.value, 0) == 0


async def test_deleted_event_row_is_restored_through_the_workflow(rig: Rig) -> None:
    booking, _ = await rig.paid()
    await rig.sql(
        "DELETE FROM blockchain_events WHERE booking_id = :id", id=uuid.UUID(booking.booking_id)
    )
    assert (await _invariants(rig))[InvariantName.EVENTS_SETTLED.value] == 0

    report = await rig.reconcile()

    gaps = [f for f in report.findings if f.kind is DivergenceKind.EVENT_GAP]
    assert [(f.booking_id, f.action) for f in gaps] == [
        (booking.booking_id, ReconcileAction.RESYNCED)
    ]
    rows = await rig.sql(
        "SELECT event_type, status FROM blockchain_events WHERE booking_id = :id",
        id=uuid.UUID(booking.booking_id),
    )
    assert [tuple(row) for row in rows] == [("BookingCreatedAndPaid", "PROCESSED")]
    assert report.invariants == ALL_HOLD


async def test_payment_missed_while_the_listener_was_down_is_delivered(rig: Rig) -> None:
    booking, handle, auth = await rig.authorized()
    block = rig.pay(auth)
    # The listener was down and its checkpoint then advanced past the payment wrongly.
    await rig.set_checkpoint(block + 1)
    rig.escrow.node.rpc("evm_mine")
    before = await _invariants(rig)
    assert before[InvariantName.ESCROW_BALANCE.value] == 1  # 100 USDC held, no booking PAID

    report = await rig.reconcile()

    gaps = [f for f in report.findings if f.kind is DivergenceKind.EVENT_GAP]
    assert [(f.booking_id, f.action) for f in gaps] == [
        (booking.booking_id, ReconcileAction.SIGNALLED)
    ]
    assert report.counts.get(DivergenceKind.MISSING_PAYMENT.value, 0) == 0  # counted once
    await wait_for(lambda: rig.status_of(handle), S.PAID)
    await wait_for(lambda: rig.db_status(booking.booking_id), "PAID")
    await wait_for(lambda: _invariants(rig), ALL_HOLD)


async def test_completion_by_a_third_party_after_release_is_applied(rig: Rig) -> None:
    booking, handle = await rig.paid()
    # The release time (appointment + 2 h) passes on-chain; anyone may then complete.
    rig.escrow.travel(2 * 86400)
    checkpoint = await rig.chain.block_number()
    await rig.set_checkpoint(checkpoint)  # the listener is behind: the completion is above it
    rig.escrow.complete(booking.chain_booking_id, rig.escrow.roles.stranger)

    report = await rig.reconcile()

    missing = [f for f in report.findings if f.kind is DivergenceKind.MISSING_COMPLETION]
    assert [(f.booking_id, f.action) for f in missing] == [
        (booking.booking_id, ReconcileAction.SIGNALLED)
    ]
    await wait_for(lambda: rig.status_of(handle), S.COMPLETED)
    await wait_for(lambda: rig.db_status(booking.booking_id), "COMPLETED")
    legs = await rig.sql(
        "SELECT amount_units FROM provider_earnings WHERE booking_id = :id",
        id=uuid.UUID(booking.booking_id),
    )
    assert [int(row[0]) for row in legs] == [90 * USDC]
    await wait_for(lambda: _invariants(rig), ALL_HOLD)


async def test_blocked_recipient_owed_balance_is_reported_and_balances(rig: Rig) -> None:
    booking, handle = await rig.paid()
    r = rig.escrow.roles
    rig.escrow.send(rig.escrow.usdc.functions.blocklist(r.provider.address), r.owner)
    block = int(rig.escrow.complete(booking.chain_booking_id, r.customer)["blockNumber"])
    await rig.deliver(block, block)
    await wait_for(lambda: rig.status_of(handle), S.COMPLETED)
    assert await rig.reader.owed_balance(r.provider.address) == 90 * USDC

    report = await rig.reconcile()

    owed = [f for f in report.findings if f.kind is DivergenceKind.OWED_BALANCE]
    assert [f.action for f in owed] == [ReconcileAction.REPORTED]
    assert f"{r.provider.address} is owed {90 * USDC}" in owed[0].detail
    assert report.invariants == ALL_HOLD


async def test_failed_booking_is_redriven_from_the_chain(rig: Rig) -> None:
    """``redrive`` re-reads the chain: a refund landed that the FAILED booking never heard of."""
    booking, handle, auth = await rig.authorized()
    # A payment the booking never agreed to (another amount, signed with the signer key
    # outside the workflow): FAILED, and the workflow sends the refund itself; the refund's
    # event is never delivered (its first poll is an hour away). (A payment after an unpaid
    # cancellation can no longer happen: the cancellation waits for the authorization to expire.)
    block = rig.pay(_other_amount(rig, auth))
    await rig.deliver(block, block)
    await wait_for(lambda: rig.status_of(handle), S.FAILED)
    await wait_for(lambda: _refund_block(rig, booking.chain_booking_id), True)

    result = await update(
        handle,
        BookingWorkflow.redrive,
        RedriveRequest(operator="ops@test", reason="refund landed, apply it"),
    )

    assert result.action == "applied_chain_events"
    assert result.status is S.FAILED
    final = await handle.result()  # the refund was the last thing it waited for
    assert final.refund_tx_hash is not None
    audit = await rig.sql(
        "SELECT kind FROM booking_events WHERE booking_id = :id ORDER BY id",
        id=uuid.UUID(booking.booking_id),
    )
    assert [row[0] for row in audit][-2:] == ["refund_recorded", "redrive"]
    await wait_for(lambda: _invariants(rig), ALL_HOLD)


def _other_amount(rig: Rig, auth: PaymentAuthorization) -> PaymentAuthorization:
    terms = BookingAuthorization(
        booking_id=auth.chain_booking_id,
        customer=auth.customer,
        provider=auth.provider,
        inviter=auth.inviter,
        amount=auth.amount - USDC,
        platform_fee_rate=auth.platform_fee_rate,
        inviter_fee_rate=auth.inviter_fee_rate,
        release_time=auth.release_time,
        expiry=auth.expiry,
        nonce=auth.nonce + 10**9,
    )
    domain = Eip712Domain(chain_id=rig.settings.chain_id, verifying_contract=rig.reader.address)
    signed = sign_booking_authorization(domain, terms, rig.escrow.roles.signer.private_key)
    return dataclasses.replace(
        auth, amount=terms.amount, nonce=terms.nonce, signature=signed.signature
    )


async def _refund_block(rig: Rig, chain_booking_id: str) -> bool:
    onchain = await rig.reader.get_booking(chain_booking_id)
    return onchain.status.name == "CANCELLED"
