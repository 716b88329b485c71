"""What each party's USDC balance should move by, from the terms the escrow settled on.

Shares are computed by `chain.basis_points.bps_of`, the rounding the escrow uses, so a table
that matches to the unit shows the contract paid exactly what was signed.
"""

from __future__ import annotations

from bookme.demo.runs import Party
from chain.basis_points import bps_of
from chain.eip712 import BookingAuthorization, CancellationAuthorization


class ExpectedBalances:
    """The expected change of every checked party's balance, summed over the bookings."""

    def __init__(self, parties: tuple[Party, ...], *, treasury: str) -> None:
        self.treasury = treasury
        self.delta: dict[str, int] = {p.address: 0 for p in parties}

    def completion(self, auth: BookingAuthorization) -> None:
        """A paid booking released: provider gets the amount less the fees the payment fixed."""
        platform = bps_of(auth.amount, auth.platform_fee_rate)
        inviter = bps_of(auth.amount, auth.inviter_fee_rate)
        self.delta[auth.customer] -= auth.amount
        self.delta[auth.provider] += auth.amount - platform - inviter
        self.delta[self.treasury] += platform
        if inviter:
            self.delta[auth.inviter] += inviter

    def cancellation(
        self,
        auth: CancellationAuthorization,
        *,
        paid: int,
        customer: str,
        provider: str,
        inviter: str,
    ) -> None:
        """A paid booking cancelled with a signed split: the customer gets back their share."""
        self.delta[customer] -= paid - auth.customer_amount
        self.delta[provider] += auth.provider_amount
        self.delta[self.treasury] += auth.platform_amount
        self.delta[inviter] += auth.inviter_amount
