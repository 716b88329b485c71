"""Who gets what when a paid booking is cancelled: a pure, configurable policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from chain.basis_points import BPS_DENOMINATOR, bps_of
from workflows.types import BookingPolicy, CancellationSplit, PartyRole


@dataclass(frozen=True, kw_only=True)
class CancellationPolicy:
    """Provider/operator cancellations and early customer ones refund in full.

    A customer cancelling within ``late_window`` of the appointment (or after it) pays the
    provider ``late_provider_bps`` of the amount as compensation; the rest is refunded. The
    platform and inviter take nothing from a cancellation.
    """

    late_window: timedelta
    late_provider_bps: int

    @classmethod
    def from_booking_policy(cls, policy: BookingPolicy) -> CancellationPolicy:
        return cls(
            late_window=timedelta(seconds=policy.late_cancellation_window_seconds),
            late_provider_bps=policy.late_cancellation_provider_bps,
        )

    def __post_init__(self) -> None:
        if not 0 <= self.late_provider_bps <= BPS_DENOMINATOR:
            raise ValueError(f"late_provider_bps must be within 0..{BPS_DENOMINATOR}")

    def is_late(self, *, scheduled_at: datetime, now: datetime) -> bool:
        return scheduled_at - now < self.late_window

    def split(
        self, *, role: PartyRole, amount: int, scheduled_at: datetime, now: datetime
    ) -> CancellationSplit:
        if amount < 0:
            raise ValueError("amount must not be negative")
        if role is PartyRole.CUSTOMER and self.is_late(scheduled_at=scheduled_at, now=now):
            provider = bps_of(amount, self.late_provider_bps)
            return CancellationSplit(
                customer_amount=amount - provider,
                provider_amount=provider,
                platform_amount=0,
                inviter_amount=0,
            )
        return CancellationSplit(
            customer_amount=amount, provider_amount=0, platform_amount=0, inviter_amount=0
        )
