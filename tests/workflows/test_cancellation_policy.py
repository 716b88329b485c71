"""The cancellation split: who cancels, and how close to the appointment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bookme.settings import default_booking_policy
from workflows.cancellation_policy import CancellationPolicy
from workflows.types import PartyRole

APPOINTMENT = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
POLICY = CancellationPolicy.from_booking_policy(
    default_booking_policy()
)  # 24 h window, 50 % to provider


def test_early_customer_cancellation_refunds_in_full():
    split = POLICY.split(
        role=PartyRole.CUSTOMER,
        amount=100_000_001,
        scheduled_at=APPOINTMENT,
        now=APPOINTMENT - timedelta(hours=24),
    )
    assert (split.customer_amount, split.provider_amount) == (100_000_001, 0)


def test_late_customer_cancellation_pays_the_provider_its_share():
    split = POLICY.split(
        role=PartyRole.CUSTOMER,
        amount=100_000_001,
        scheduled_at=APPOINTMENT,
        now=APPOINTMENT - timedelta(hours=23, minutes=59),
    )
    assert split.provider_amount == 50_000_000
    assert split.customer_amount == 50_000_001
    assert split.total == 100_000_001
    assert split.platform_amount == split.inviter_amount == 0


@pytest.mark.parametrize("role", [PartyRole.PROVIDER, PartyRole.OPERATOR])
def test_provider_and_operator_cancellations_always_refund_in_full(role):
    split = POLICY.split(role=role, amount=7, scheduled_at=APPOINTMENT, now=APPOINTMENT)
    assert split.customer_amount == 7
    assert split.total == 7


def test_out_of_range_share_is_refused():
    with pytest.raises(ValueError, match="late_provider_bps"):
        CancellationPolicy(late_window=timedelta(0), late_provider_bps=10_001)
