"""chain/world_check.py: the pure comparison, and what a real escrow on anvil answers."""

from __future__ import annotations

from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry

from bookme.embedded.anvil import AnvilNode
from chain.client import ChainClient
from chain.escrow import ContractDomain, FeePolicy
from chain.world_check import (
    ExpectedWorld,
    ObservedWorld,
    WorldCheck,
    check_world,
    compare,
    failure_line,
    mismatch,
    unanswered,
)
from tests.contracts.harness import EscrowHarness

ESCROW = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
USDC = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
SIGNER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
OPERATOR = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
FEES = FeePolicy(platform_fee_bps=1000, platform_fee_with_inviter_bps=500, inviter_fee_bps=500)

EXPECTED = ExpectedWorld(
    chain_id=8453, escrow=ESCROW, fee_policy=FEES, usdc=USDC, signer=SIGNER, operator=OPERATOR
)
DOMAIN = ContractDomain(
    fields=15,
    name="BookingEscrow",
    version="1",
    chain_id=8453,
    verifying_contract=ESCROW,
    salt="0x" + "00" * 32,
    extensions=(),
)
OBSERVED = ObservedWorld(
    chain_id=8453,
    code_present=True,
    domain=DOMAIN,
    fee_policy=FEES,
    usdc=USDC,
    signer=SIGNER,
    operator=OPERATOR,
)


def test_a_chain_that_matches_has_no_difference():
    assert compare(EXPECTED, OBSERVED) == []
    # Addresses compare whatever their case.
    assert compare(replace(EXPECTED, escrow=ESCROW.lower(), usdc=USDC.lower()), OBSERVED) == []


def test_a_wrong_chain_id_is_the_only_difference_reported():
    observed = replace(OBSERVED, chain_id=31337, domain=replace(DOMAIN, version="2"))
    [difference] = compare(EXPECTED, observed)
    assert difference.check is WorldCheck.CHAIN_ID
    assert difference.message == "chain id is 31337, settings say 8453"


def test_no_code_at_the_escrow_address():
    [difference] = compare(EXPECTED, ObservedWorld(chain_id=8453, code_present=False))
    assert difference.check is WorldCheck.CONTRACT_CODE
    assert difference.message == (
        f"no contract code at escrow {ESCROW} on chain 8453 "
        "(wrong BOOKME_ESCROW_ADDRESS or deployment file?)"
    )


def test_a_contract_without_eip712_domain_is_not_an_escrow():
    [difference] = compare(EXPECTED, ObservedWorld(chain_id=8453, code_present=True))
    assert difference.check is WorldCheck.CONTRACT_CODE
    assert "does not answer eip712Domain(): not a BookingEscrow" in difference.message


def test_a_gating_difference_leaves_the_later_checks_unanswered():
    on_another_chain = compare(EXPECTED, replace(OBSERVED, chain_id=1))
    assert unanswered(on_another_chain) == set(WorldCheck) - {WorldCheck.CHAIN_ID}
    no_code = compare(EXPECTED, ObservedWorld(chain_id=8453, code_present=False))
    assert unanswered(no_code) == set(WorldCheck) - {WorldCheck.CHAIN_ID, WorldCheck.CONTRACT_CODE}
    fees = compare(EXPECTED, replace(OBSERVED, fee_policy=replace(FEES, inviter_fee_bps=1)))
    assert unanswered(fees) == frozenset()


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        (replace(DOMAIN, version="2"), 'signing domain version is "2", settings say "1"'),
        (
            replace(DOMAIN, name="Other"),
            'signing domain name is "Other", settings say "BookingEscrow"',
        ),
        (replace(DOMAIN, chain_id=1), "signing domain chain id is 1, settings say 8453"),
        (
            replace(DOMAIN, verifying_contract=USDC),
            f"signing domain verifying contract is {USDC}, settings say {ESCROW}",
        ),
    ],
)
def test_each_signing_domain_field_is_named(domain: ContractDomain, message: str):
    [difference] = compare(EXPECTED, replace(OBSERVED, domain=domain))
    assert (difference.check, difference.message) == (WorldCheck.SIGNING_DOMAIN, message)


def test_fee_roles_and_usdc_differences_are_each_named():
    observed = replace(
        OBSERVED,
        fee_policy=replace(FEES, inviter_fee_bps=400),
        signer=OPERATOR,
        operator="0x0000000000000000000000000000000000000000",
        usdc=ESCROW,
    )
    found = {d.check: d.message for d in compare(EXPECTED, observed)}
    assert found == {
        WorldCheck.FEE_POLICY: "on-chain inviter_fee_bps is 400, settings say 500",
        WorldCheck.SIGNER_ROLE: f"the escrow's signer is {OPERATOR}, settings' signer key is {SIGNER}",
        WorldCheck.OPERATOR_ROLE: (
            "the escrow's operator is 0x0000000000000000000000000000000000000000, "
            f"settings' operator key is {OPERATOR}"
        ),
        WorldCheck.USDC: f"the escrow's USDC is {ESCROW}, settings say {USDC}",
    }


def test_unconfigured_roles_usdc_and_fees_are_not_checked():
    expected = replace(EXPECTED, usdc=None, signer=None, operator=None, fee_policy=None)
    observed = replace(
        OBSERVED,
        signer=USDC,
        operator=USDC,
        usdc=SIGNER,
        fee_policy=replace(FEES, inviter_fee_bps=1),
    )
    assert compare(expected, observed) == []


def test_the_failure_is_one_line_naming_every_difference():
    differences = compare(
        EXPECTED, replace(OBSERVED, domain=replace(DOMAIN, version="2"), usdc=ESCROW)
    )
    line = failure_line(differences)
    assert "\n" not in line
    assert line == (
        'chain check failed: signing domain version is "2", settings say "1"; '
        f"the escrow's USDC is {ESCROW}, settings say {USDC}"
    )
    error = mismatch(differences)
    assert str(error) == line
    assert error.differences == tuple(differences)


@pytest.mark.integration
async def test_a_deployed_escrow_is_checked_question_by_question(fresh_chain: AnvilNode):
    harness = EscrowHarness(fresh_chain)
    roles = harness.roles
    right = ExpectedWorld(
        chain_id=fresh_chain.chain_id,
        escrow=harness.escrow.address,
        fee_policy=FEES,
        usdc=harness.usdc.address,
        signer=roles.signer.address,
        operator=roles.operator.address,
    )
    wrong = {
        "chain id is 31337, settings say 84532": replace(right, chain_id=84532),
        f"the escrow's USDC is {harness.usdc.address}, settings say {roles.stranger.address}": (
            replace(right, usdc=roles.stranger.address)
        ),
        "on-chain platform_fee_bps is 1000, settings say 800": replace(
            right, fee_policy=replace(FEES, platform_fee_bps=800)
        ),
        f"the escrow's signer is {roles.signer.address}, settings' signer key is "
        f"{roles.stranger.address}": replace(right, signer=roles.stranger.address),
        f"no contract code at escrow {roles.other.address} on chain 31337 (wrong "
        "BOOKME_ESCROW_ADDRESS or deployment file?)": replace(right, escrow=roles.other.address),
    }
    # Unpinned to a chain id, as the worker's own client is not; a pinned one is tested below.
    async with ChainClient([fresh_chain.http_url], registry=CollectorRegistry()) as client:
        assert await check_world(client, right) == []
        for message, expected in wrong.items():
            assert [d.message for d in await check_world(client, expected)] == [message]
        not_an_escrow = replace(right, escrow=harness.usdc.address)
        [difference] = await check_world(client, not_an_escrow)
        assert difference.check is WorldCheck.CONTRACT_CODE
    # A client pinned to the configured chain refuses the provider; the check still says why.
    async with ChainClient(
        [fresh_chain.http_url], registry=CollectorRegistry(), expected_chain_id=84532
    ) as pinned:
        [difference] = await check_world(pinned, replace(right, chain_id=84532))
        assert difference.message == "chain id is 31337, settings say 84532"
