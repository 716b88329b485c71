"""deploy_local, the deployment file, and the startup check (verify_deployment)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bookme.embedded.anvil import AnvilNode
from bookme.settings import Settings
from chain.client import ChainClient
from chain.deploy import (
    Deployment,
    deploy_local,
    fee_policy_from_settings,
    owner_delay_for_chain,
    verify_deployment,
)
from chain.errors import DeploymentError, DeploymentMismatch, ExecutionReverted
from chain.escrow import EscrowReader, FeePolicy
from chain.sender import SenderConfig
from chain.timelock import OwnerTimelock
from tests.chain.rpc_proxy import ScriptedRpcServer

FAST = SenderConfig(poll_interval_seconds=0.02)


async def deploy(node: AnvilNode, client: ChainClient, **extra: Any) -> Deployment:
    a = node.accounts
    options: dict[str, Any] = {
        "signer_address": a[1].address,
        "operator_address": a[2].address,
        "treasury_address": a[3].address,
        "sender_config": FAST,
        **extra,
    }
    return await deploy_local(client, a[0].private_key, **options)


@pytest.mark.integration
async def test_deploys_funds_and_verifies(
    fresh_chain: AnvilNode, client: ChainClient, tmp_path: Path
):
    wallets = [fresh_chain.accounts[i].address for i in (4, 5, 6)]
    fresh_wallet = "0x000000000000000000000000000000000000bEEF"
    wallets.append(fresh_wallet)
    deployment = await deploy(
        fresh_chain, client, fund=wallets, amount_units=2_500 * 10**6, fund_eth_wei=10**18
    )
    assert await client.get_balance(fresh_wallet) == 10**18
    a = fresh_chain.accounts
    assert deployment.chain_id == 31337
    assert deployment.mock_usdc is True
    assert (deployment.deployer, deployment.signer, deployment.operator, deployment.treasury) == (
        a[0].address,
        a[1].address,
        a[2].address,
        a[3].address,
    )
    assert deployment.block_number <= await client.block_number()
    reader = EscrowReader(client, deployment.escrow)
    assert await reader.usdc_address() == deployment.usdc
    assert await reader.operator() == a[2].address
    for wallet in wallets:
        assert await reader.usdc_balance_of(wallet) == 2_500 * 10**6
    assert await reader.usdc_balance_of(a[7].address) == 0

    path = tmp_path / "dev" / "deployment.json"
    deployment.write_json(path)
    assert Deployment.read_json(path) == deployment
    assert json.loads(path.read_text())["escrow"] == deployment.escrow

    await verify_deployment(
        client,
        chain_id=31337,
        escrow_address=deployment.escrow.lower(),
        usdc_address=deployment.usdc,
        fee_policy=fee_policy_from_settings(Settings()),
    )


@pytest.mark.integration
async def test_verify_refuses_mismatches(fresh_chain: AnvilNode, client: ChainClient):
    deployment = await deploy(fresh_chain, client)
    with pytest.raises(DeploymentMismatch, match="chain id is 31337, settings say 8453"):
        await verify_deployment(client, chain_id=8453, escrow_address=deployment.escrow)
    with pytest.raises(DeploymentMismatch, match="no contract code at escrow"):
        await verify_deployment(
            client, chain_id=31337, escrow_address=fresh_chain.accounts[9].address
        )
    with pytest.raises(DeploymentMismatch, match="does not answer eip712Domain"):
        await verify_deployment(client, chain_id=31337, escrow_address=deployment.usdc)
    with pytest.raises(DeploymentMismatch, match="the escrow's USDC is"):
        await verify_deployment(
            client,
            chain_id=31337,
            escrow_address=deployment.escrow,
            usdc_address=fresh_chain.accounts[8].address,
        )
    with pytest.raises(
        DeploymentMismatch, match="on-chain platform_fee_bps is 1000, settings say 800"
    ):
        await verify_deployment(
            client,
            chain_id=31337,
            escrow_address=deployment.escrow,
            fee_policy=FeePolicy(
                platform_fee_bps=800, platform_fee_with_inviter_bps=500, inviter_fee_bps=500
            ),
        )


@pytest.mark.integration
async def test_uses_a_given_usdc_and_owner(fresh_chain: AnvilNode, client: ChainClient):
    first = await deploy(fresh_chain, client)
    owner = fresh_chain.accounts[7].address
    second = await deploy(fresh_chain, client, usdc_address=first.usdc, owner_address=owner)
    assert second.usdc == first.usdc
    assert second.mock_usdc is False
    assert second.escrow != first.escrow
    reader = EscrowReader(client, second.escrow)
    # The escrow's owner is its timelock; the given owner account proposes and executes there.
    assert await reader.owner() == second.timelock
    assert second.owner == owner
    assert await OwnerTimelock(client, second.timelock).is_proposer(owner)
    assert not await OwnerTimelock(client, second.timelock).is_proposer(
        fresh_chain.accounts[0].address
    )


@pytest.mark.integration
async def test_the_escrow_is_owned_by_a_timelock_with_the_configured_delay(
    fresh_chain: AnvilNode, client: ChainClient, tmp_path: Path
):
    deployment = await deploy(fresh_chain, client, owner_delay_seconds=7200)
    reader = EscrowReader(client, deployment.escrow)
    timelock = OwnerTimelock(client, deployment.timelock)
    assert await reader.owner() == deployment.timelock
    assert await timelock.min_delay() == 7200
    assert deployment.owner_delay_seconds == 7200
    assert deployment.owner == deployment.deployer
    path = tmp_path / "deployment.json"
    deployment.write_json(path)
    assert Deployment.read_json(path) == deployment

    # The deployer (owner account) cannot change a role directly: only through the timelock.
    with pytest.raises(ExecutionReverted) as refused:
        await client.estimate_gas(
            {
                "from": deployment.deployer,
                "to": deployment.escrow,
                "data": reader.contract.abi.encode_call("setSigner", deployment.deployer),
            }
        )
    assert reader.contract.abi.explain(refused.value).error_name == "OwnableUnauthorizedAccount"


def test_owner_delay_defaults_to_zero_locally_and_two_days_elsewhere():
    assert owner_delay_for_chain(31337, None) == 0
    assert owner_delay_for_chain(1337, 60) == 60
    assert owner_delay_for_chain(8453, None) == 48 * 3600
    assert owner_delay_for_chain(84532, 3600) == 3600
    with pytest.raises(DeploymentError, match="owner timelock delay of 0 on chain 8453"):
        owner_delay_for_chain(8453, 0)


async def test_refuses_a_zero_owner_delay_on_a_public_chain():
    base_mainnet = ScriptedRpcServer("base", lambda method, params: "0x2105")
    async with ChainClient([await base_mainnet.start()]) as client:
        with pytest.raises(DeploymentError, match="owner timelock delay of 0"):
            await deploy_local(
                client,
                "0x" + "11" * 32,
                signer_address="0x" + "22" * 20,
                operator_address="0x" + "33" * 20,
                treasury_address="0x" + "44" * 20,
                usdc_address="0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
                owner_delay_seconds=0,
            )
    await base_mainnet.stop()
    assert base_mainnet.calls == [("base", "eth_chainId")]  # nothing was signed or sent


async def test_refuses_mock_usdc_on_a_public_chain():
    base_mainnet = ScriptedRpcServer("base", lambda method, params: "0x2105")
    async with ChainClient([await base_mainnet.start()]) as client:
        with pytest.raises(DeploymentError, match="refusing to deploy MockUSDC on chain 8453"):
            await deploy_local(
                client,
                "0x" + "11" * 32,
                signer_address="0x" + "22" * 20,
                operator_address="0x" + "33" * 20,
                treasury_address="0x" + "44" * 20,
            )
    await base_mainnet.stop()
    assert base_mainnet.calls == [("base", "eth_chainId")]  # nothing was signed or sent
