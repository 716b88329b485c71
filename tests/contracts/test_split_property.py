"""The fee split always sums to the amount: a pure-Python mirror of the contract's formula,
checked exhaustively with hypothesis and against the deployed contract for a few examples."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.contracts.harness import EscrowHarness

BPS = 10_000
MAX_TOTAL_FEE_BPS = 2_000
UINT128_MAX = 2**128 - 1


@dataclass(frozen=True)
class Policy:
    platform_fee_bps: int
    platform_fee_with_inviter_bps: int
    inviter_fee_bps: int


def split(amount: int, policy: Policy, *, with_inviter: bool) -> tuple[int, int, int]:
    """(platform fee, inviter fee, provider amount) exactly as createAndPayBooking stores them."""
    if with_inviter:
        platform = amount * policy.platform_fee_with_inviter_bps // BPS
        inviter = amount * policy.inviter_fee_bps // BPS
    else:
        platform = amount * policy.platform_fee_bps // BPS
        inviter = 0
    return platform, inviter, amount - platform - inviter


policies = st.builds(
    Policy,
    platform_fee_bps=st.integers(0, MAX_TOTAL_FEE_BPS),
    platform_fee_with_inviter_bps=st.integers(0, MAX_TOTAL_FEE_BPS),
    inviter_fee_bps=st.integers(0, MAX_TOTAL_FEE_BPS),
).filter(lambda p: p.platform_fee_with_inviter_bps + p.inviter_fee_bps <= MAX_TOTAL_FEE_BPS)


@given(amount=st.integers(1, UINT128_MAX), policy=policies, with_inviter=st.booleans())
def test_split_sums_to_the_amount(amount: int, policy: Policy, with_inviter: bool):
    platform, inviter, provider = split(amount, policy, with_inviter=with_inviter)
    assert platform + inviter + provider == amount
    assert min(platform, inviter, provider) >= 0
    # Fees never exceed the cap, so the provider keeps at least 80 %.
    assert (platform + inviter) * BPS <= amount * MAX_TOTAL_FEE_BPS
    assert provider * BPS >= amount * (BPS - MAX_TOTAL_FEE_BPS)


@pytest.mark.integration
@settings(
    max_examples=25,
    deadline=None,
    # One deployment serves every example: each uses its own booking id and nonce.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    amount=st.one_of(st.integers(1, 10**6), st.integers(1, 10**15), st.just(UINT128_MAX)),
    policy=policies,
    with_inviter=st.booleans(),
)
def test_contract_stores_and_pays_the_mirrored_split(
    escrow: EscrowHarness, amount: int, policy: Policy, with_inviter: bool
):
    r = escrow.roles
    c = escrow.escrow.functions
    escrow.send(
        c.setFeePolicy(
            policy.platform_fee_bps, policy.platform_fee_with_inviter_bps, policy.inviter_fee_bps
        ),
        r.owner,
    )
    escrow.send(escrow.usdc.functions.mint(r.customer.address, amount), r.customer)
    auth = escrow.booking_auth(
        with_inviter=with_inviter,
        amount=amount,
        platform_fee_rate=(
            policy.platform_fee_with_inviter_bps if with_inviter else policy.platform_fee_bps
        ),
        inviter_fee_rate=policy.inviter_fee_bps if with_inviter else 0,
    )
    escrow.pay(auth)
    platform, inviter, provider = split(amount, policy, with_inviter=with_inviter)
    assert escrow.booking(auth.booking_id)[4:8] == (amount, platform, inviter, provider)

    before = escrow.balances()
    escrow.complete(auth.booking_id, r.customer)
    after = escrow.balances()

    assert after["provider"] - before["provider"] == provider
    assert after["treasury"] - before["treasury"] == platform
    assert after["inviter"] - before["inviter"] == inviter
    assert before["escrow"] - after["escrow"] == amount
