"""When re-running a workflow's writes would leave its row at an older status (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from bookme.ops.rebuild_apply import status_left_behind
from bookme.ops.rebuild_capture import RecordedWrite
from bookme.ops.rebuild_nonces import could_be_ours, nonce_of
from chain.eip712 import BookingAuthorization
from chain.escrow import escrow_abi
from workflows import constants as c
from workflows.audit import AuditAction
from workflows.types import BookingStatus, TransitionRecord

S = BookingStatus


def _transition(seq: int, old: BookingStatus, new: BookingStatus) -> RecordedWrite:
    record = TransitionRecord(
        booking_id="b",
        dedupe_key=f"b:{seq}",
        from_status=old,
        to_status=new,
        action=AuditAction.PAYMENT_CONFIRMED,
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return RecordedWrite(activity=c.APPLY_TRANSITION, arg=record)


WRITES = [
    _transition(1, S.PENDING_PAYMENT, S.PAID),
    _transition(2, S.PAID, S.PAID),  # audit only: never sets the status
    _transition(3, S.PAID, S.COMPLETED),
]


def test_writes_lost_at_the_end_come_back_in_order_and_the_row_ends_current():
    assert status_left_behind(WRITES, present=set()) is None
    assert status_left_behind(WRITES, present={"b:1"}) is None
    assert status_left_behind(WRITES, present={"b:1", "b:2", "b:3"}) is None


def test_an_audit_only_write_present_alone_changes_nothing():
    assert status_left_behind(WRITES, present={"b:2"}) is None


def test_a_last_change_written_before_older_lost_ones_is_reported():
    reason = status_left_behind(WRITES, present={"b:3"})
    assert reason is not None
    assert "(b:3)" in reason
    assert "older than the workflow's" in reason


def test_a_nonce_beyond_the_sequence_is_not_a_floor():
    """Found by the chaos restore fault: an orphan paid with a random 128-bit nonce made the
    floor overflow the BIGINT sequence, and the rebuild failed."""
    nonce = 2**127 + 7
    auth = BookingAuthorization(
        booking_id="0x" + "11" * 32,
        customer="0x" + "22" * 20,
        provider="0x" + "33" * 20,
        inviter="0x" + "00" * 20,
        amount=100,
        platform_fee_rate=1000,
        inviter_fee_rate=0,
        release_time=1,
        expiry=2,
        nonce=nonce,
    )
    abi = escrow_abi()
    call = abi.encode_call("createAndPayBooking", auth.as_abi_tuple(), b"\x00" * 65)
    assert nonce_of(call) == nonce
    assert nonce_of(abi.encode_call("completeService", b"\x01" * 32)) is None
    assert not could_be_ours(nonce)
    assert could_be_ours(42)
