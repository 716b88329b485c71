"""Deploying the escrow (executing a chain/deploy_plan.py plan), the deployment file, the startup check.

The escrow's owner is always an OwnerTimelock (OpenZeppelin TimelockController without an
admin) whose proposer, canceller and executor is the owner account: every owner change
(signer, operator, treasury, fee policy, unpause, owed redirects) is scheduled in public and
runs only after the timelock's delay. A zero delay keeps dev and tests fast and is refused
off local chains.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import structlog
from pydantic import SecretStr

from chain.artifacts import load_artifact
from chain.client import ChainClient
from chain.deploy_plan import (
    DEFAULT_OWNER_DELAY_SECONDS,
    DeployPlan,
    Roles,
    owner_delay_for_chain,
    plan_deployment,
    usdc_for_chain,
)
from chain.errors import DeploymentError
from chain.escrow import FeePolicy
from chain.hexutil import address
from chain.keys import TransactionKey
from chain.models import TransactionReceipt
from chain.networks import LOCAL_CHAIN_IDS
from chain.sender import SenderConfig, TransactionSender
from chain.world_check import ExpectedWorld, check_world, mismatch

log = structlog.get_logger(__name__)

# Re-exported: the dev chain, the API's health and older callers import them from here.
__all__ = [
    "DEFAULT_OWNER_DELAY_SECONDS",
    "LOCAL_CHAIN_IDS",
    "Deployment",
    "PlanCost",
    "deploy",
    "deploy_local",
    "estimate_plan",
    "fee_policy_from_settings",
    "owner_delay_for_chain",
    "verify_deployment",
]


@dataclass(frozen=True, kw_only=True)
class Deployment:
    """Where the contracts live; written by `bookme deploy`, read by `make dev` and services."""

    chain_id: int
    escrow: str
    usdc: str
    deployer: str
    block_number: int
    signer: str
    operator: str
    treasury: str
    mock_usdc: bool
    # The escrow's owner (an OwnerTimelock), the account that schedules and executes through it,
    # and its delay. Empty in files written before the timelock existed.
    timelock: str = ""
    owner: str = ""
    owner_delay_seconds: int = 0
    # contracts/*.sol hash the escrow was built from (chain/artifacts): a dev chain redeploys
    # when the committed contract changed.
    contracts_sha256: str = ""

    def write_json(self, path: Path) -> None:
        """Write atomically (temp file + rename) so a reader never sees half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)

    @classmethod
    def read_json(cls, path: Path) -> Deployment:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            chain_id=int(data["chain_id"]),
            escrow=address(data["escrow"]),
            usdc=address(data["usdc"]),
            deployer=address(data["deployer"]),
            block_number=int(data["block_number"]),
            signer=address(data["signer"]),
            operator=address(data["operator"]),
            treasury=address(data["treasury"]),
            mock_usdc=bool(data["mock_usdc"]),
            timelock=address(data["timelock"]) if data.get("timelock") else "",
            owner=address(data["owner"]) if data.get("owner") else "",
            owner_delay_seconds=int(data.get("owner_delay_seconds", 0)),
            contracts_sha256=str(data.get("contracts_sha256", "")),
        )


@dataclass(frozen=True, kw_only=True)
class PlanCost:
    """What a plan may cost: gas per transaction (None: needs an earlier step mined first)."""

    gas: tuple[int | None, ...]
    max_fee_per_gas: int
    deployer_balance: int

    @property
    def max_cost_wei(self) -> int:
        """The most the estimated transactions can cost at the quoted maxFeePerGas."""
        return sum(g for g in self.gas if g is not None) * self.max_fee_per_gas


async def estimate_plan(sender: TransactionSender, plan: DeployPlan) -> PlanCost:
    """Gas of every step (with the sender's headroom), the fee quote and the deployer's balance."""
    gas: list[int | None] = []
    created: set[str] = set()
    for tx in plan.transactions:
        if tx.to is not None and tx.to in created:
            # A mint into the MockUSDC an earlier step deploys: nothing to call yet.
            gas.append(None)
        else:
            gas.append(await sender.estimate_gas(to=tx.to, data=tx.data, value=tx.value))
        if tx.creates is not None:
            created.add(tx.creates)
    fees = await sender.estimate_fees()
    balance = await sender.client.get_balance(plan.deployer)
    return PlanCost(gas=tuple(gas), max_fee_per_gas=fees.max_fee_per_gas, deployer_balance=balance)


async def check_before_sending(client: ChainClient, plan: DeployPlan, cost: PlanCost) -> None:
    """Refuse a plan that cannot finish: no token at the USDC address, a moved nonce, no ETH."""
    if not plan.mock_usdc and not await client.get_code(plan.usdc):
        raise DeploymentError(
            f"no contract at the USDC address {plan.usdc} on chain {plan.chain_id} "
            "(is BOOKME_RPC_URLS on the right chain?)"
        )
    nonce = await client.get_transaction_count(plan.deployer, "pending")
    if nonce != plan.first_nonce:
        raise DeploymentError(
            f"the deployer {plan.deployer} is at nonce {nonce}, the plan at {plan.first_nonce}: "
            "another transaction from it is in flight; plan again"
        )
    if cost.deployer_balance < cost.max_cost_wei:
        raise DeploymentError(
            f"the deployer {plan.deployer} holds {cost.deployer_balance} wei; the deployment may "
            f"cost up to {cost.max_cost_wei} wei: fund it with ETH on chain {plan.chain_id} first"
        )


async def execute_plan(sender: TransactionSender, plan: DeployPlan) -> int:
    """Send the plan's transactions; the escrow's block number.

    Each contract creation is awaited and must land at the planned address before the next one
    is sent (the escrow's owner is the planned timelock address). Plain calls (funding) are sent
    back to back, then awaited together.
    """
    escrow_block = -1
    waits: list[Awaitable[TransactionReceipt]] = []
    for tx in plan.transactions:
        if tx.creates is None:
            waits.append(sender.wait(await sender.send(to=tx.to, data=tx.data, value=tx.value)))
            continue
        sent, receipt = await sender.send_and_wait(to=None, data=tx.data)
        if not receipt.succeeded or receipt.contract_address is None:
            raise DeploymentError(f"{tx.label} failed in transaction {sent.tx_hash}")
        if address(receipt.contract_address) != tx.creates:
            raise DeploymentError(
                f"{tx.label} landed at {receipt.contract_address}, planned {tx.creates}: "
                "the deployer sent another transaction meanwhile; nothing more was sent"
            )
        log.info("contract_deployed", step=tx.label, address=tx.creates, tx_hash=sent.tx_hash)
        if tx.creates == plan.escrow:
            escrow_block = receipt.block_number
    receipts = await asyncio.gather(*waits)
    failed = [r.tx_hash for r in receipts if not r.succeeded]
    if failed:
        raise DeploymentError(f"funding test wallets failed in {failed}")
    return escrow_block


def deployment_from_plan(plan: DeployPlan, block_number: int) -> Deployment:
    """The deployment file's record of an executed plan."""
    return Deployment(
        chain_id=plan.chain_id,
        escrow=plan.escrow,
        usdc=plan.usdc,
        deployer=plan.deployer,
        block_number=block_number,
        signer=address(plan.roles.signer),
        operator=address(plan.roles.operator),
        treasury=address(plan.roles.treasury),
        mock_usdc=plan.mock_usdc,
        timelock=plan.timelock,
        owner=address(plan.roles.owner),
        owner_delay_seconds=plan.owner_delay_seconds,
        contracts_sha256=load_artifact("BookingEscrow").sources_sha256,
    )


async def deploy(
    client: ChainClient,
    key: TransactionKey,
    plan: DeployPlan,
    *,
    sender_config: SenderConfig | None = None,
) -> Deployment:
    """Check, then execute ``plan`` from ``key`` (its deployer); nothing is sent if a check fails."""
    if key.address != plan.deployer:
        raise DeploymentError(f"the plan deploys from {plan.deployer}, the key is {key.address}")
    sender = TransactionSender(client, key, chain_id=plan.chain_id, config=sender_config)
    await check_before_sending(client, plan, await estimate_plan(sender, plan))
    deployment = deployment_from_plan(plan, await execute_plan(sender, plan))
    log.info(
        "deployment_done",
        chain_id=plan.chain_id,
        escrow=plan.escrow,
        usdc=plan.usdc,
        timelock=plan.timelock,
        owner_delay_seconds=plan.owner_delay_seconds,
        block_number=deployment.block_number,
    )
    return deployment


async def deploy_local(
    client: ChainClient,
    deployer_key: TransactionKey | SecretStr | str,
    *,
    signer_address: str,
    operator_address: str,
    treasury_address: str,
    fund: Sequence[str] = (),
    amount_units: int = 0,
    fund_eth_wei: int = 0,
    usdc_address: str | None = None,
    owner_address: str | None = None,
    owner_delay_seconds: int | None = None,
    sender_config: SenderConfig | None = None,
) -> Deployment:
    """Deploy the escrow (and MockUSDC unless ``usdc_address`` is given), fund test wallets.

    The escrow is owned by a new OwnerTimelock with ``owner_delay_seconds`` (see
    ``owner_delay_for_chain``) whose proposer and executor is ``owner_address`` (default: the
    deployer; a multisig in production). Each ``fund`` wallet gets ``amount_units`` of MockUSDC
    and, if ``fund_eth_wei`` > 0, that much native currency from the deployer (for gas).
    MockUSDC is only ever deployed on a local chain id (chain/networks.py).
    """
    key = deployer_key if isinstance(deployer_key, TransactionKey) else TransactionKey(deployer_key)
    chain_id = await client.chain_id()
    # Refusals first: nothing (not even the nonce) is asked of the chain for a refused plan.
    usdc_for_chain(chain_id, usdc_address)
    owner_delay_for_chain(chain_id, owner_delay_seconds)
    roles = Roles(
        signer=address(signer_address),
        operator=address(operator_address),
        treasury=address(treasury_address),
        owner=address(owner_address or key.address),
    )
    plan = plan_deployment(
        chain_id=chain_id,
        deployer=key.address,
        nonce=await client.get_transaction_count(key.address, "pending"),
        roles=roles,
        usdc_address=usdc_address,
        owner_delay_seconds=owner_delay_seconds,
        fund=fund,
        amount_units=amount_units,
        fund_eth_wei=fund_eth_wei,
    )
    return await deploy(client, key, plan, sender_config=sender_config)


async def verify_deployment(
    client: ChainClient,
    *,
    chain_id: int,
    escrow_address: str,
    usdc_address: str | None = None,
    fee_policy: FeePolicy | None = None,
) -> None:
    """Startup check (chain/world_check.py, as every process runs it): raise `WorldMismatch`
    naming every difference from the configuration on one line."""
    expected = ExpectedWorld(
        chain_id=chain_id, escrow=escrow_address, usdc=usdc_address or None, fee_policy=fee_policy
    )
    differences = await check_world(client, expected)
    if differences:
        raise mismatch(differences)
    log.info("deployment_verified", chain_id=chain_id, escrow=escrow_address)


def fee_policy_from_settings(settings: Any) -> FeePolicy:
    """The fee policy the configuration expects on chain (``BOOKME_*_FEE_BPS``)."""
    return FeePolicy(
        platform_fee_bps=settings.platform_fee_bps,
        platform_fee_with_inviter_bps=settings.platform_fee_with_inviter_bps,
        inviter_fee_bps=settings.inviter_fee_bps,
    )
