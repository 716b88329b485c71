"""The deployment plan (pure): predicted addresses, which USDC a chain gets, the steps in order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chain.artifacts import VERIFIED_CONTRACT_NAMES, load_standard_input
from chain.deploy_plan import Roles, create_address, plan_deployment, usdc_for_chain
from chain.errors import DeploymentError
from chain.networks import CANONICAL_USDC

ROOT = Path(__file__).resolve().parents[2]
ANVIL_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ROLES = Roles(
    signer="0x" + "22" * 20, operator="0x" + "33" * 20, treasury="0x" + "44" * 20, owner=ANVIL_0
)


def test_create_addresses_are_the_ones_anvil_gives_its_first_account():
    # make dev's MockUSDC (nonce 0) and escrow (nonce 2, after the timelock) addresses.
    assert create_address(ANVIL_0, 0) == "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    assert create_address(ANVIL_0, 2) == "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
    assert create_address(ANVIL_0, 128) != create_address(ANVIL_0, 127)


def test_circles_usdc_is_required_off_local_chains():
    assert usdc_for_chain(84532, CANONICAL_USDC[84532].lower()) == CANONICAL_USDC[84532]
    assert usdc_for_chain(31337, None) is None  # MockUSDC
    with pytest.raises(
        DeploymentError, match=r"MockUSDC on chain 8453: .* USDC on chain 8453 is 0x8335"
    ):
        usdc_for_chain(8453, None)
    with pytest.raises(DeploymentError, match="refusing USDC"):
        usdc_for_chain(8453, CANONICAL_USDC[84532])
    with pytest.raises(DeploymentError, match="no canonical USDC is known for chain 10"):
        usdc_for_chain(10, "0x0b2C639c533813f4Aa9D7837CAf62653d097Ff85")


def test_a_local_plan_deploys_mock_usdc_then_the_timelock_then_the_escrow_then_funds():
    plan = plan_deployment(
        chain_id=31337,
        deployer=ANVIL_0,
        nonce=0,
        roles=ROLES,
        fund=["0x" + "55" * 20],
        amount_units=5,
        fund_eth_wei=7,
    )
    labels = [tx.label for tx in plan.transactions]
    assert labels[:3] == ["deploy MockUSDC", "deploy OwnerTimelock", "deploy BookingEscrow"]
    assert [tx.creates for tx in plan.transactions[:3]] == [
        create_address(ANVIL_0, n) for n in range(3)
    ]
    assert (plan.usdc, plan.timelock, plan.escrow) == tuple(
        create_address(ANVIL_0, n) for n in range(3)
    )
    assert plan.mock_usdc
    assert plan.owner_delay_seconds == 0
    assert [tx.to for tx in plan.transactions[3:]] == [plan.usdc, "0x" + "55" * 20]
    assert plan.transactions[4].value == 7
    # The escrow's constructor names the timelock as its owner: its last argument.
    assert plan.transactions[2].data.endswith(bytes.fromhex(plan.timelock[2:]).rjust(32, b"\0"))


def test_a_public_plan_is_two_creations_behind_a_two_day_delay():
    plan = plan_deployment(
        chain_id=8453, deployer=ANVIL_0, nonce=41, roles=ROLES, usdc_address=CANONICAL_USDC[8453]
    )
    assert [tx.label for tx in plan.transactions] == [
        "deploy OwnerTimelock",
        "deploy BookingEscrow",
    ]
    assert (plan.timelock, plan.escrow) == (
        create_address(ANVIL_0, 41),
        create_address(ANVIL_0, 42),
    )
    assert plan.owner_delay_seconds == 48 * 3600
    assert not plan.mock_usdc
    with pytest.raises(DeploymentError, match="funding wallets needs the MockUSDC"):
        plan_deployment(
            chain_id=31337,
            deployer=ANVIL_0,
            nonce=0,
            roles=ROLES,
            usdc_address=CANONICAL_USDC[8453],
            fund=[ANVIL_0],
        )


@pytest.mark.parametrize("name", VERIFIED_CONTRACT_NAMES)
def test_the_standard_json_input_holds_the_current_sources(name: str):
    """Without Node: every contracts/ file in the input is the file on disk (else `make contracts`)."""
    data = load_standard_input(name)
    ours = {
        path: src["content"]
        for path, src in data["sources"].items()
        if path.startswith("contracts/")
    }
    assert f"contracts/{name}.sol" in ours
    for path, content in ours.items():
        assert (ROOT / path).read_text() == content, f"{path} changed: run `make contracts`"
    for path, src in data["sources"].items():
        if path.startswith("@openzeppelin/"):
            assert (ROOT / "node_modules" / path).read_text() == src["content"]
    artifact = json.loads((ROOT / "chain" / "artifacts" / f"{name}.json").read_text())
    assert data["settings"]["optimizer"] == artifact["settings"]["optimizer"]
    assert data["settings"]["evmVersion"] == artifact["settings"]["evmVersion"]
