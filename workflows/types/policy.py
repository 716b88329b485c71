"""What one booking runs under: its policy (frozen into the input) and the workflow's start input.

``Settings.booking_policy()`` builds the policy from configuration; this module imports no
settings, so workflow code never depends on ``bookme``.
"""

from dataclasses import dataclass
from datetime import datetime

from chain.basis_points import BPS_DENOMINATOR

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True, kw_only=True)
class BookingPolicy:
    """Every knob one booking runs under, frozen into its input so its history shows them.

    No defaults: `Settings.booking_policy()` is the one source (`default_booking_policy()` in
    `bookme.settings` for tests and benches).
    """

    chain_id: int
    confirmations: int
    monitoring_window_seconds: int
    push_grace_seconds: int
    poll_interval_seconds: int
    payment_deadline_seconds: int
    authorization_ttl_seconds: int
    auto_complete_delay_seconds: int
    late_cancellation_window_seconds: int
    late_cancellation_provider_bps: int
    platform_fee_bps: int
    platform_fee_with_inviter_bps: int
    inviter_fee_bps: int
    # Histories from before this field carry none: the default (the setting's default at the
    # time) keeps them decoding. Every other knob is required: its default lives in Settings.
    settlement_finality_seconds: int = 900

    def __post_init__(self) -> None:
        # A zero interval would spin the workflow's timer loop; refuse it at the client.
        for name in (
            "monitoring_window_seconds",
            "poll_interval_seconds",
            "payment_deadline_seconds",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in (
            "confirmations",
            "push_grace_seconds",
            "authorization_ttl_seconds",
            "auto_complete_delay_seconds",
            "late_cancellation_window_seconds",
            "settlement_finality_seconds",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name in (
            "late_cancellation_provider_bps",
            "platform_fee_bps",
            "platform_fee_with_inviter_bps",
            "inviter_fee_bps",
        ):
            if not 0 <= getattr(self, name) <= BPS_DENOMINATOR:
                raise ValueError(f"{name} must be within 0..{BPS_DENOMINATOR} bps")

    def fee_rates(self, *, has_inviter: bool) -> tuple[int, int]:
        """(platformFeeRate, inviterFeeRate) in bps, as the contract's fee policy expects them."""
        if has_inviter:
            return self.platform_fee_with_inviter_bps, self.inviter_fee_bps
        return self.platform_fee_bps, 0


@dataclass(frozen=True, kw_only=True)
class BookingInput:
    """Start input of ``BookingWorkflow``; the API builds it when a booking is created."""

    booking_id: str
    chain_booking_id: str
    customer_wallet: str
    provider_wallet: str
    inviter_wallet: str | None = None
    amount_units: int
    scheduled_at: datetime
    service_id: str
    customer_id: str
    provider_id: str
    policy: BookingPolicy
    # The API request that started the workflow: of concurrent creations with one
    # Idempotency-Key (which all join this workflow), that one answers 201, the others replay.
    request_id: str | None = None

    @property
    def inviter_or_zero(self) -> str:
        return self.inviter_wallet or ZERO_ADDRESS
