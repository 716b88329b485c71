"""The `bookme deploy` command (its arguments and help: bookme/ops/deploy_args.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bookme.devchain import TEST_WALLET_USDC_UNITS, DevRoles, anvil_default_accounts
from bookme.ops.deploy_args import ROLE_FLAGS
from bookme.ops.errors import OpsError
from bookme.settings import Settings, SettingsError
from bookme.settings_checks import ANVIL_ADDRESSES
from chain.artifacts import load_artifact
from chain.client import ChainClient
from chain.deploy import (
    Deployment,
    PlanCost,
    deploy,
    estimate_plan,
    fee_policy_from_settings,
    verify_deployment,
)
from chain.deploy_plan import DeployPlan, Roles, plan_deployment
from chain.errors import ChainError, DeploymentError, DeploymentMismatch
from chain.hexutil import address
from chain.keys import InvalidKeyError, TransactionKey
from chain.networks import CANONICAL_USDC, EXPLORERS, is_local
from chain.sender import SenderConfig, TransactionSender
from chain.verification import ContractVerification, write_verification


@dataclass(frozen=True, kw_only=True)
class DeployRequest:
    """Who deploys, with which roles, and which wallets a local deployment funds."""

    key: TransactionKey
    roles: Roles
    fund: tuple[str, ...] = ()


def _deployer(settings: Settings) -> TransactionKey:
    try:
        secret = settings.deployer_key()
    except SettingsError as exc:
        raise OpsError(str(exc)) from None
    if secret is None:
        raise OpsError(
            "no deployer key: set BOOKME_DEPLOYER_KEY_FILE (or BOOKME_DEPLOYER_PRIVATE_KEY)"
        )
    try:
        return TransactionKey(secret)
    except InvalidKeyError:
        raise OpsError("the configured deployer key is malformed") from None


def deploy_request(settings: Settings, args: argparse.Namespace, chain_id: int) -> DeployRequest:
    """The deployer and roles: anvil's on a local chain without flags, else every flag, checked."""
    given = {role: getattr(args, role) for role in ROLE_FLAGS}
    if is_local(chain_id) and not any(given.values()):
        dev = DevRoles.from_accounts(anvil_default_accounts())
        roles = Roles(
            signer=dev.signer.address,
            operator=dev.operator.address,
            treasury=dev.treasury.address,
            owner=dev.deployer.address,
        )
        key = TransactionKey(dev.deployer.private_key)
        return DeployRequest(key=key, roles=roles, fund=tuple(w.address for w in dev.wallets))
    missing = [f"--{role}" for role, value in given.items() if not value]
    if missing:
        raise OpsError(f"chain {chain_id} needs every role: missing {' '.join(missing)}")
    try:
        roles = Roles(**{role: address(value) for role, value in given.items()})
    except ValueError as exc:
        raise OpsError(f"a role is not an address: {exc}") from None
    key = _deployer(settings)
    if not is_local(chain_id):
        published = [f"--{r}" for r in ROLE_FLAGS if getattr(roles, r) in ANVIL_ADDRESSES]
        if published or key.address in ANVIL_ADDRESSES:
            raise OpsError(
                f"anvil's published accounts on chain {chain_id}: {published or 'deployer'}"
            )
        if roles.owner == key.address:
            raise OpsError(
                "the owner must not be the deployer off local chains: the deployer key sits on "
                "the deploy host; make the owner a multisig (or an offline key)"
            )
    return DeployRequest(key=key, roles=roles)


async def _kept(
    client: ChainClient, settings: Settings, chain_id: int, signer: str
) -> Deployment | None:
    """The deployment file's contracts when they are on this chain and match the settings."""
    path = settings.deployment_file
    if not path.exists():
        return None
    existing = Deployment.read_json(path)
    if is_local(chain_id) and (
        existing.contracts_sha256 != load_artifact("BookingEscrow").sources_sha256
        or existing.signer != signer
    ):
        return None  # the dev chain follows the committed contract and anvil's roles
    try:
        await verify_deployment(
            client,
            chain_id=chain_id,
            escrow_address=existing.escrow,
            usdc_address=existing.usdc,
            fee_policy=fee_policy_from_settings(settings),
        )
    except DeploymentMismatch as exc:
        if is_local(chain_id):
            return None  # a restarted dev chain: deploy again
        raise OpsError(
            f"{path} does not match chain {chain_id}: {exc}; move the file away to deploy anew"
        ) from None
    return existing


def _check_pinned_escrow(settings: Settings, chain_id: int) -> None:
    """With BOOKME_ESCROW_ADDRESS set off local chains, only its own deployment file is kept.

    A lost deployment volume must not make the deploy job put a second escrow on chain (the
    services would follow it, the bookings paid into the first would not): restore the file.
    """
    pinned = settings.escrow_address
    if not pinned or is_local(chain_id):
        return
    path = settings.deployment_file
    recorded = Deployment.read_json(path).escrow if path.exists() else None
    if recorded is None or recorded.lower() != pinned.lower():
        raise OpsError(
            f"BOOKME_ESCROW_ADDRESS names {address(pinned)} but {path} "
            + (f"names {recorded}" if recorded else "is missing")
            + ": restore that escrow's deployment file, or unset BOOKME_ESCROW_ADDRESS to deploy a new one"
        )


def print_plan(plan: DeployPlan, cost: PlanCost, out: IO[str]) -> None:
    """Every step of the plan: what it sends, from whom, to where, how much data and gas."""
    out.write(
        f"chain {plan.chain_id}: deployer {plan.deployer} (nonce {plan.first_nonce}, "
        f"balance {cost.deployer_balance} wei)\n"
        f"  USDC       {plan.usdc}{'  MockUSDC, deployed below' if plan.mock_usdc else ''}\n"
        f"  timelock   {plan.timelock}  delay {plan.owner_delay_seconds}s, proposer/executor "
        f"{plan.roles.owner}\n"
        f"  escrow     {plan.escrow}  signer {plan.roles.signer} operator {plan.roles.operator} "
        f"treasury {plan.roles.treasury}\n"
    )
    for number, (tx, gas) in enumerate(zip(plan.transactions, cost.gas, strict=True), start=1):
        target = tx.to or f"(create) -> {tx.creates}"
        gas_text = str(gas) if gas is not None else "after the steps before it"
        value = f", value {tx.value} wei" if tx.value else ""
        out.write(
            f"step {number}: {tx.label}\n  from {plan.deployer} to {target}, "
            f"data {len(tx.data)} bytes, gas {gas_text}{value}\n"
        )
    out.write(
        f"at most {cost.max_cost_wei} wei at maxFeePerGas {cost.max_fee_per_gas} "
        f"(deployer holds {cost.deployer_balance})\n"
    )


def print_verification(
    chain_id: int, items: tuple[ContractVerification, ...], directory: Path, out: IO[str]
) -> None:
    explorer = EXPLORERS.get(chain_id, "the chain's explorer")
    out.write(f"To verify on {explorer} (Verify & Publish, Solidity standard-JSON input):\n")
    for item in items:
        out.write(
            f"  {item.contract} {item.address}\n"
            f"    contract {item.qualified_name}, compiler {item.compiler_version}, "
            f"optimizer {item.optimizer_runs} runs, EVM {item.evm_version}\n"
            f"    input {directory / item.standard_input_file}\n"
            f"    constructor arguments {item.constructor_arguments}\n"
        )


async def run_deploy(settings: Settings, args: argparse.Namespace, out: IO[str]) -> int:
    """`bookme deploy [--dry-run] [--if-missing] [--owner ... --treasury ...]`."""
    async with ChainClient.from_settings(settings) as client:
        chain_id = await client.chain_id()
        request = deploy_request(settings, args, chain_id)
        _check_pinned_escrow(settings, chain_id)
        deployment = (
            await _kept(client, settings, chain_id, request.roles.signer)
            if args.if_missing
            else None
        )
        if deployment is None:
            deployment = await _deploy(client, settings, request, chain_id, args.dry_run, out)
            if deployment is None:
                return 0
            deployment.write_json(settings.deployment_file)
        else:
            out.write(f"kept the deployment in {settings.deployment_file}\n")
    out.write(
        f"escrow {deployment.escrow} (timelock {deployment.timelock}, USDC {deployment.usdc}) "
        f"on chain {chain_id} from block {deployment.block_number}; written to "
        f"{settings.deployment_file}\n"
    )
    if not deployment.mock_usdc:
        directory = settings.deployment_file.parent / "verify"
        items = write_verification(deployment, directory)
        print_verification(chain_id, items, directory, out)
    return 0


async def _deploy(
    client: ChainClient,
    settings: Settings,
    request: DeployRequest,
    chain_id: int,
    dry_run: bool,
    out: IO[str],
) -> Deployment | None:
    """Plan, print the plan, and send it unless ``dry_run`` (then None)."""
    config = SenderConfig(confirmations=settings.confirmations)
    try:
        plan = plan_deployment(
            chain_id=chain_id,
            deployer=request.key.address,
            nonce=await client.get_transaction_count(request.key.address, "pending"),
            roles=request.roles,
            usdc_address=settings.usdc_address or CANONICAL_USDC.get(chain_id),
            owner_delay_seconds=settings.owner_timelock_delay_seconds,
            fund=request.fund,
            amount_units=TEST_WALLET_USDC_UNITS if request.fund else 0,
        )
        sender = TransactionSender(client, request.key, chain_id=chain_id, config=config)
        print_plan(plan, await estimate_plan(sender, plan), out)
        if dry_run:
            out.write("dry run: nothing was sent\n")
            return None
        return await deploy(client, request.key, plan, sender_config=config)
    except DeploymentError as exc:
        raise OpsError(str(exc)) from None


def run_deploy_command(
    args: argparse.Namespace, settings: Settings, out: IO[str] = sys.stdout
) -> int:
    """Run `bookme deploy`; a refusal or an unreachable chain is one line on stderr and exit 2."""
    try:
        return asyncio.run(run_deploy(settings, args, out))
    except (OpsError, ChainError) as exc:
        print(f"bookme deploy: {exc}", file=sys.stderr)  # noqa: T201 - the CLI's error line
        return 2
