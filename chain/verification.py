"""What an explorer needs to verify a deployment: standard-JSON input, compiler, constructor args.

Everything follows from the deployment file and the committed artifacts: the standard-JSON
inputs ``contracts/build.mjs`` writes (chain/artifacts/standard-input/) and the constructor
arguments ``chain/deploy_plan.py`` encoded, re-encoded by the same functions. Recompiling an input
with the named compiler gives the deployed runtime code byte for byte, metadata hash included;
only the escrow's immutable (its USDC address) is filled in at deployment, as explorers expect
(tests/chain/test_deploy_remote.py checks it against a node).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chain.artifacts import load_artifact, load_standard_input
from chain.contract import ContractAbi
from chain.deploy import Deployment
from chain.deploy_plan import Roles, escrow_constructor_args, timelock_constructor_args
from chain.errors import DeploymentError
from chain.networks import EXPLORERS

SUMMARY_FILE = "verify.json"


@dataclass(frozen=True, kw_only=True)
class ContractVerification:
    """One deployed contract as an explorer's "verify (standard-JSON input)" form asks for it."""

    contract: str
    address: str
    qualified_name: str  # "contracts/BookingEscrow.sol:BookingEscrow"
    compiler_version: str  # "v0.8.27+commit.40a35a09": the explorer's spelling
    optimizer_runs: int
    evm_version: str
    constructor_arguments: str  # ABI-encoded, hex without 0x (Etherscan's field)
    standard_input_file: str


def _constructor_args(name: str, deployment: Deployment) -> tuple[Any, ...]:
    if name == "OwnerTimelock":
        return timelock_constructor_args(deployment.owner_delay_seconds, deployment.owner)
    roles = Roles(
        signer=deployment.signer,
        operator=deployment.operator,
        treasury=deployment.treasury,
        owner=deployment.owner,
    )
    return escrow_constructor_args(deployment.usdc, roles, deployment.timelock)


def contract_verifications(deployment: Deployment) -> tuple[ContractVerification, ...]:
    """The timelock's and the escrow's verification data, in deployment order."""
    if not deployment.timelock or not deployment.owner:
        raise DeploymentError("the deployment file predates the owner timelock: redeploy")
    result = []
    for name, at in (("OwnerTimelock", deployment.timelock), ("BookingEscrow", deployment.escrow)):
        artifact = load_artifact(name)
        settings = load_standard_input(name)["settings"]
        args = ContractAbi(artifact.abi).encode_constructor_args(
            *_constructor_args(name, deployment)
        )
        result.append(
            ContractVerification(
                contract=name,
                address=at,
                qualified_name=f"contracts/{name}.sol:{name}",
                compiler_version=f"v{artifact.solc}",
                optimizer_runs=int(settings["optimizer"]["runs"]),
                evm_version=str(settings["evmVersion"]),
                constructor_arguments=args.hex(),
                standard_input_file=f"{name}.standard-input.json",
            )
        )
    return tuple(result)


def write_verification(deployment: Deployment, directory: Path) -> tuple[ContractVerification, ...]:
    """Write each contract's standard-JSON input and ``verify.json`` (the form's fields) there."""
    verifications = contract_verifications(deployment)
    directory.mkdir(parents=True, exist_ok=True)
    for item in verifications:
        text = json.dumps(load_standard_input(item.contract), indent=2) + "\n"
        (directory / item.standard_input_file).write_text(text, encoding="utf-8")
    summary = {
        "chain_id": deployment.chain_id,
        "explorer": EXPLORERS.get(deployment.chain_id, ""),
        "contracts": [asdict(item) for item in verifications],
    }
    (directory / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return verifications
