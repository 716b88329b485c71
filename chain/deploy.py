"""Deploying MockUSDC + BookingEscrow (local chains), the deployment file, and the startup check.

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
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import structlog
from pydantic import SecretStr

from chain.artifacts import load_artifact
from chain.client import ChainClient
from chain.contract import ContractAbi
from chain.errors import DeploymentError, DeploymentMismatch
from chain.escrow import EscrowReader, FeePolicy
from chain.hexutil import address
from chain.keys import TransactionKey
from chain.sender import SenderConfig, TransactionSender

log = structlog.get_logger(__name__)

LOCAL_CHAIN_IDS = frozenset({31337, 1337})
# Off local chains, when no delay is configured: two days to notice and cancel a bad change.
DEFAULT_OWNER_DELAY_SECONDS = 48 * 3600
EXPECTED_DOMAIN_NAME = "BookingEscrow"
EXPECTED_DOMAIN_VERSION = "1"


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


async def _deploy_contract(sender: TransactionSender, name: str, *args: Any) -> tuple[str, int]:
    artifact = load_artifact(name)
    code = ContractAbi(artifact.abi).encode_deploy(artifact.bytecode, *args)
    sent, receipt = await sender.send_and_wait(to=None, data=code)
    if not receipt.succeeded or receipt.contract_address is None:
        raise DeploymentError(f"deploying {name} failed in transaction {sent.tx_hash}")
    log.info("contract_deployed", contract=name, address=receipt.contract_address)
    return receipt.contract_address, receipt.block_number


def owner_delay_for_chain(chain_id: int, configured: int | None) -> int:
    """The OwnerTimelock delay to deploy with: ``configured``, else 0 locally and 48 h elsewhere.

    A zero delay is refused off local chains: it would let one leaked owner key move the escrow
    at once, which is what the timelock exists to prevent.
    """
    local = chain_id in LOCAL_CHAIN_IDS
    delay = configured if configured is not None else (0 if local else DEFAULT_OWNER_DELAY_SECONDS)
    if delay < 0:
        raise DeploymentError(f"the owner timelock delay cannot be negative ({delay})")
    if delay == 0 and not local:
        raise DeploymentError(
            f"refusing an owner timelock delay of 0 on chain {chain_id}: only local chains "
            f"{sorted(LOCAL_CHAIN_IDS)} may skip the delay"
        )
    return delay


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
    deployer; a multisig in production).

    Each ``fund`` wallet gets ``amount_units`` of MockUSDC and, if ``fund_eth_wei`` > 0, that
    much native currency from the deployer (for gas).

    MockUSDC is only ever deployed on a local chain id (31337, 1337): anywhere else a real
    USDC address is required.
    """
    key = deployer_key if isinstance(deployer_key, TransactionKey) else TransactionKey(deployer_key)
    chain_id = await client.chain_id()
    if usdc_address is None and chain_id not in LOCAL_CHAIN_IDS:
        raise DeploymentError(
            f"refusing to deploy MockUSDC on chain {chain_id}: only local chains "
            f"{sorted(LOCAL_CHAIN_IDS)}; pass the real USDC address instead"
        )
    if fund and usdc_address is not None:
        raise DeploymentError("funding wallets needs the MockUSDC this command deploys")
    owner_delay = owner_delay_for_chain(chain_id, owner_delay_seconds)
    owner = address(owner_address or key.address)
    sender = TransactionSender(client, key, chain_id=chain_id, config=sender_config)
    mock = usdc_address is None
    if usdc_address is None:
        usdc_address, _ = await _deploy_contract(sender, "MockUSDC")
    timelock, _ = await _deploy_contract(sender, "OwnerTimelock", owner_delay, [owner], [owner])
    escrow, block_number = await _deploy_contract(
        sender,
        "BookingEscrow",
        address(usdc_address),
        address(signer_address),
        address(operator_address),
        address(treasury_address),
        timelock,
    )
    if fund:
        usdc_abi = ContractAbi(load_artifact("MockUSDC").abi)
        # Sent back to back (distinct nonces from the sender), then awaited together.
        sent = [
            await sender.send(
                to=usdc_address, data=usdc_abi.encode_call("mint", address(w), amount_units)
            )
            for w in fund
        ]
        if fund_eth_wei:
            sent += [await sender.send(to=address(w), data=b"", value=fund_eth_wei) for w in fund]
        receipts = await asyncio.gather(*(sender.wait(s) for s in sent))
        failed = [s.tx_hash for s, r in zip(sent, receipts, strict=True) if not r.succeeded]
        if failed:
            raise DeploymentError(f"funding test wallets failed in {failed}")
    deployment = Deployment(
        chain_id=chain_id,
        escrow=escrow,
        usdc=address(usdc_address),
        deployer=key.address,
        block_number=block_number,
        signer=address(signer_address),
        operator=address(operator_address),
        treasury=address(treasury_address),
        mock_usdc=mock,
        timelock=timelock,
        owner=owner,
        owner_delay_seconds=owner_delay,
        contracts_sha256=load_artifact("BookingEscrow").sources_sha256,
    )
    log.info(
        "deployment_done",
        chain_id=chain_id,
        escrow=escrow,
        usdc=deployment.usdc,
        timelock=timelock,
        owner_delay_seconds=owner_delay,
        funded=len(fund),
        block_number=block_number,
    )
    return deployment


async def verify_deployment(
    client: ChainClient,
    *,
    chain_id: int,
    escrow_address: str,
    usdc_address: str | None = None,
    fee_policy: FeePolicy | None = None,
) -> None:
    """Startup check: the chain and the escrow's EIP-712 domain match configuration, or raise."""
    actual_chain = await client.chain_id()
    if actual_chain != chain_id:
        raise DeploymentMismatch(
            f"the RPC provider serves chain id {actual_chain} but BOOKME_CHAIN_ID is {chain_id}"
        )
    escrow_address = address(escrow_address)
    if not await client.get_code(escrow_address):
        raise DeploymentMismatch(
            f"no contract at escrow address {escrow_address} on chain {chain_id} "
            "(wrong BOOKME_ESCROW_ADDRESS or deployment file, or a restarted dev chain?)"
        )
    reader = EscrowReader(client, escrow_address)
    try:
        domain = await reader.eip712_domain()
    except Exception as exc:
        raise DeploymentMismatch(
            f"the contract at {escrow_address} does not answer eip712Domain(): not a BookingEscrow"
        ) from exc
    problems: list[str] = []
    if domain.name != EXPECTED_DOMAIN_NAME:
        problems.append(f"domain name {domain.name!r} != {EXPECTED_DOMAIN_NAME!r}")
    if domain.version != EXPECTED_DOMAIN_VERSION:
        problems.append(f"domain version {domain.version!r} != {EXPECTED_DOMAIN_VERSION!r}")
    if domain.chain_id != chain_id:
        problems.append(f"domain chainId {domain.chain_id} != {chain_id}")
    if domain.verifying_contract != escrow_address:
        problems.append(f"verifyingContract {domain.verifying_contract} != {escrow_address}")
    if usdc_address:
        token = await reader.usdc_address()
        if token != address(usdc_address):
            problems.append(f"escrow token {token} != configured USDC {address(usdc_address)}")
    if fee_policy is not None:
        on_chain = await reader.fee_policy()
        if on_chain != fee_policy:
            problems.append(f"on-chain fee policy {on_chain} != configured {fee_policy}")
    if problems:
        raise DeploymentMismatch(
            f"escrow {escrow_address} on chain {chain_id} does not match configuration: "
            + "; ".join(problems)
        )
    log.info("deployment_verified", chain_id=chain_id, escrow=escrow_address)


def fee_policy_from_settings(settings: Any) -> FeePolicy:
    """The fee policy the configuration expects on chain (``BOOKME_*_FEE_BPS``)."""
    return FeePolicy(
        platform_fee_bps=settings.platform_fee_bps,
        platform_fee_with_inviter_bps=settings.platform_fee_with_inviter_bps,
        inviter_fee_bps=settings.inviter_fee_bps,
    )
