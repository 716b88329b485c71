"""One table for "does this status agree with the chain": the cases readers used to disagree on."""

from __future__ import annotations

import pytest

from workflows.chain_agreement import agrees_with_chain, settled_with_chain, statuses_agreeing_with
from workflows.types import BookingStatus, OnChainStatus

S = BookingStatus
C = OnChainStatus


def test_a_booking_cancelled_before_payment_agrees_with_an_empty_chain():
    assert agrees_with_chain(S.CANCELLED, C.NONE)
    assert settled_with_chain(S.CANCELLED, C.NONE)


@pytest.mark.parametrize("status", [S.PAID, S.PENDING_COMPLETION, S.PENDING_CANCELLATION])
def test_money_held_agrees_only_with_a_paid_escrow(status):
    assert [c for c in OnChainStatus if agrees_with_chain(status, c)] == [C.PAID]
    assert status.holds_money
    assert not settled_with_chain(status, C.PAID)


def test_failed_agrees_with_anything_but_is_settled_only_once_the_money_moved():
    assert all(agrees_with_chain(S.FAILED, c) for c in OnChainStatus)
    assert not settled_with_chain(S.FAILED, C.PAID)  # a refund is still owed
    assert settled_with_chain(S.FAILED, C.CANCELLED)


def test_the_reconcilers_view_by_chain_state():
    assert statuses_agreeing_with(C.NONE) == {S.PENDING_PAYMENT, S.CANCELLED, S.FAILED}
    assert statuses_agreeing_with(C.COMPLETED) == {S.COMPLETED, S.FAILED}
    assert statuses_agreeing_with(C.CANCELLED) == {S.CANCELLED, S.FAILED}
