"""Contracts and wallets on a local dev chain: deploy once, reuse while the chain keeps them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog
from eth_account import Account

from bookme.embedded.anvil import ANVIL_DEFAULT_ACCOUNTS, DevAccount
from chain.artifacts import load_artifact
from chain.client import ChainClient
from chain.deploy import (
    Deployment,
    deploy_local,
    verify_deployment,
)
from chain.errors import DeploymentMismatch
from chain.escrow import FeePolicy

log = structlog.get_logger(__name__)

TEST_WALLET_USDC_UNITS = 10_000 * 10**6
# anvil's (and hardhat's) published default mnemonic: the accounts every local chain funds.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"


def anvil_default_accounts(count: int = ANVIL_DEFAULT_ACCOUNTS) -> tuple[DevAccount, ...]:
    """The local chain's well-known accounts, derived as anvil derives them."""
    Account.enable_unaudited_hdwallet_features()
    accounts = []
    for i in range(count):
        acct = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        accounts.append(
            DevAccount(address=acct.address, private_key="0x" + acct.key.hex().removeprefix("0x"))
        )
    return tuple(accounts)


# The accounts DevRoles gives a part to (deployer, signer, operator, treasury); the rest are wallets.
ROLE_ACCOUNTS = 4


@dataclass(frozen=True, kw_only=True)
class DevRoles:
    """Which of anvil's published accounts plays which part locally."""

    deployer: DevAccount
    signer: DevAccount
    operator: DevAccount
    treasury: DevAccount
    wallets: tuple[DevAccount, ...]

    @classmethod
    def from_accounts(cls, accounts: tuple[DevAccount, ...]) -> DevRoles:
        if len(accounts) < ROLE_ACCOUNTS + 2:
            raise ValueError(f"the dev chain needs at least {ROLE_ACCOUNTS + 2} funded accounts")
        return cls(
            deployer=accounts[0],
            signer=accounts[1],
            operator=accounts[2],
            treasury=accounts[3],
            wallets=accounts[ROLE_ACCOUNTS:],
        )


async def ensure_deployed(
    client: ChainClient,
    roles: DevRoles,
    deployment_file: Path,
    fee_policy: FeePolicy,
    *,
    owner_delay_seconds: int | None = None,
) -> tuple[Deployment, bool]:
    """The deployment in ``deployment_file`` if the chain still has it, else a fresh one.

    A deployment of an older contract (the committed artifacts changed since) is replaced too.
    Returns the deployment and whether it was just made.
    """
    if deployment_file.exists():
        existing = Deployment.read_json(deployment_file)
        try:
            await verify_deployment(
                client,
                chain_id=existing.chain_id,
                escrow_address=existing.escrow,
                usdc_address=existing.usdc,
                fee_policy=fee_policy,
            )
            current = load_artifact("BookingEscrow").sources_sha256
            if existing.contracts_sha256 != current:
                log.info("devchain.redeploy", reason="the escrow contract changed")
            elif existing.signer == roles.signer.address:
                return existing, False
        except DeploymentMismatch as exc:
            log.info("devchain.redeploy", reason=str(exc))
    deployment = await deploy_local(
        client,
        roles.deployer.private_key,
        signer_address=roles.signer.address,
        operator_address=roles.operator.address,
        treasury_address=roles.treasury.address,
        fund=[w.address for w in roles.wallets],
        amount_units=TEST_WALLET_USDC_UNITS,
        owner_delay_seconds=owner_delay_seconds,
    )
    deployment.write_json(deployment_file)
    return deployment, True
