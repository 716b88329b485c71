"""`bookme deploy` on a chain that is not local: anvil started with Base Sepolia's chain id.

Circle's USDC does not exist on that anvil, so the fixture puts MockUSDC's runtime code at the
canonical address with ``anvil_setCode``: the production code path (the chain/networks.py table,
the code-present check) runs unchanged, with no test-only override. The deployer and every role
are fresh keys and addresses, because the command refuses anvil's published accounts off local
chains.
"""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from pydantic import SecretStr

from bookme.cli import build_parser
from bookme.embedded.anvil import AnvilNode
from bookme.embedded.process import free_port
from bookme.ops.deploy import run_deploy, run_deploy_command
from bookme.ops.errors import OpsError
from bookme.settings import Settings
from chain.artifacts import load_artifact
from chain.client import ChainClient
from chain.contract import ContractAbi
from chain.deploy import Deployment, fee_policy_from_settings, verify_deployment
from chain.escrow import EscrowReader
from chain.hexutil import address, to_bytes
from chain.keys import TransactionKey
from chain.networks import CANONICAL_USDC
from chain.sender import SenderConfig, TransactionSender
from chain.timelock import OwnerTimelock

ROOT = Path(__file__).resolve().parents[2]
BASE_SEPOLIA = 84532
USDC = CANONICAL_USDC[BASE_SEPOLIA]
DEPLOYER_KEY = "0x" + "5a" * 32  # not one of anvil's published keys (those are refused here)
ROLES = {
    role: address(f"0x{n:040x}")
    for role, n in (("owner", 0xA11C), ("signer", 0x516E), ("operator", 0x95), ("treasury", 0x7BE5))
}
TWO_DAYS = 48 * 3600

# Recompiles a standard-JSON input with the npm solc (the compiler build.mjs pins) and prints the
# contract's creation code, runtime code and the runtime's immutable positions.
RECOMPILE = """
const solc = require(process.argv[1]);
const [file, name] = process.argv.slice(2);
const input = JSON.parse(require("fs").readFileSync(file, "utf8"));
input.settings.outputSelection = {"*": {"*": ["evm.bytecode.object", "evm.deployedBytecode"]}};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors || []).filter((e) => e.severity === "error");
if (errors.length) { console.error(JSON.stringify(errors)); process.exit(1); }
const evm = out.contracts[`contracts/${name}.sol`][name].evm;
console.log(JSON.stringify({creation: evm.bytecode.object, runtime: evm.deployedBytecode.object,
  immutables: evm.deployedBytecode.immutableReferences}));
"""


@pytest.fixture(scope="module")
def sepolia(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilNode]:
    """anvil answering with Base Sepolia's chain id, Circle's USDC address holding MockUSDC code."""
    node = AnvilNode(
        port=free_port(),
        log_path=tmp_path_factory.mktemp("sepolia") / "anvil.log",
        chain_id=BASE_SEPOLIA,
    )
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
async def chain(sepolia: AnvilNode) -> Any:
    """A client on the Sepolia stand-in, rolled back after the test."""
    snapshot = sepolia.rpc("evm_snapshot")
    async with ChainClient([sepolia.http_url], expected_chain_id=BASE_SEPOLIA) as client:
        # MockUSDC's runtime code at Circle's address: deployed anywhere, then copied there.
        funder = TransactionKey(sepolia.accounts[0].private_key)
        sender = TransactionSender(
            client, funder, chain_id=BASE_SEPOLIA, config=SenderConfig(poll_interval_seconds=0.02)
        )
        mock = load_artifact("MockUSDC")
        _, receipt = await sender.send_and_wait(
            to=None, data=ContractAbi(mock.abi).encode_deploy(mock.bytecode)
        )
        assert receipt.contract_address is not None
        code = await client.get_code(receipt.contract_address)
        sepolia.rpc("anvil_setCode", USDC, "0x" + code.hex())
        sepolia.rpc("anvil_setBalance", deployer_address(), hex(10**18))
        yield client
    sepolia.rpc("evm_revert", snapshot)


def deployer_address() -> str:
    return str(Account.from_key(DEPLOYER_KEY).address)


def settings_for(node: AnvilNode, tmp_path: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "rpc_urls": [node.http_url],
        "chain_id": BASE_SEPOLIA,
        "deployment_file": tmp_path / "deploy" / "deployment.json",
        "deployer_private_key": SecretStr(DEPLOYER_KEY),
        "confirmations": 0,
        **extra,
    }
    return Settings(_env_file=None, **values)


def argv(*flags: str, **roles: str) -> list[str]:
    chosen = {**ROLES, **roles}
    return ["deploy", *flags, *(f"--{k}={v}" for k, v in chosen.items() if v)]


async def deploy_cli(settings: Settings, *args: str) -> str:
    out = io.StringIO()
    assert await run_deploy(settings, build_parser().parse_args(list(args)), out) == 0
    return out.getvalue()


async def nonce(client: ChainClient) -> int:
    return await client.get_transaction_count(deployer_address(), "latest")


@pytest.mark.integration
async def test_dry_run_prints_every_transaction_and_sends_nothing(
    sepolia: AnvilNode, chain: ChainClient, tmp_path: Path
):
    settings = settings_for(sepolia, tmp_path)
    head = await chain.block_number()
    out = await deploy_cli(settings, *argv("--dry-run"))

    assert "step 1: deploy OwnerTimelock" in out
    assert "step 2: deploy BookingEscrow" in out
    assert "step 3" not in out  # no MockUSDC, no funding off local chains
    assert out.count(f"from {deployer_address()} to (create) -> 0x") == 2
    assert f"USDC       {USDC}\n" in out
    assert f"delay {TWO_DAYS}s, proposer/executor {ROLES['owner']}" in out
    for line in (line for line in out.splitlines() if line.startswith("  from ")):
        assert " bytes, gas " in line
        assert int(line.rsplit("gas ", 1)[1]) > 100_000
    assert out.endswith("dry run: nothing was sent\n")
    assert (await nonce(chain), await chain.block_number()) == (0, head)
    assert not settings.deployment_file.exists()


@pytest.mark.integration
async def test_deploys_behind_a_two_day_timelock_on_circles_usdc_and_keeps_it(
    sepolia: AnvilNode, chain: ChainClient, tmp_path: Path
):
    settings = settings_for(sepolia, tmp_path)
    out = await deploy_cli(settings, *argv("--if-missing"))

    deployment = Deployment.read_json(settings.deployment_file)
    assert (deployment.chain_id, deployment.usdc, deployment.mock_usdc) == (
        BASE_SEPOLIA,
        USDC,
        False,
    )
    assert (deployment.signer, deployment.operator, deployment.treasury, deployment.owner) == (
        ROLES["signer"],
        ROLES["operator"],
        ROLES["treasury"],
        ROLES["owner"],
    )
    escrow = EscrowReader(chain, deployment.escrow)
    timelock = OwnerTimelock(chain, deployment.timelock)
    assert await escrow.owner() == deployment.timelock
    assert await escrow.usdc_address() == USDC
    assert await timelock.min_delay() == TWO_DAYS
    assert await timelock.is_proposer(ROLES["owner"])
    assert not await timelock.is_proposer(deployer_address())
    await verify_deployment(
        chain,
        chain_id=BASE_SEPOLIA,
        escrow_address=deployment.escrow,
        usdc_address=USDC,
        fee_policy=fee_policy_from_settings(settings),
    )
    verify = json.loads((settings.deployment_file.parent / "verify" / "verify.json").read_text())
    assert [c["address"] for c in verify["contracts"]] == [deployment.timelock, deployment.escrow]
    assert verify["explorer"] == "https://sepolia.basescan.org"
    assert "compiler v0.8.27+commit.40a35a09, optimizer 200 runs, EVM cancun" in out

    sent = await nonce(chain)
    pinned = settings_for(sepolia, tmp_path, escrow_address=deployment.escrow.lower())
    again = await deploy_cli(pinned, *argv("--if-missing"))
    assert again.startswith(f"kept the deployment in {settings.deployment_file}")
    assert await nonce(chain) == sent == 2


def recompile(standard_input: Path, name: str) -> dict[str, Any]:
    done = subprocess.run(
        ["node", "-e", RECOMPILE, str(ROOT / "node_modules" / "solc"), str(standard_input), name],
        capture_output=True,
        text=True,
        check=True,
        timeout=240,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def creation_inputs(node: AnvilNode) -> dict[str, bytes]:
    """Input data of every contract-creating transaction on the chain, by created address."""
    found: dict[str, bytes] = {}
    head = int(str(node.rpc("eth_blockNumber")), 16)
    for number in range(head + 1):
        block: Any = node.rpc("eth_getBlockByNumber", hex(number), True)
        for tx in block["transactions"]:
            if tx["to"] is None:
                receipt: Any = node.rpc("eth_getTransactionReceipt", tx["hash"])
                found[receipt["contractAddress"].lower()] = to_bytes(tx["input"])
    return found


@pytest.mark.integration
@pytest.mark.timeout(600)
async def test_the_emitted_standard_json_input_recompiles_to_the_deployed_bytecode(
    sepolia: AnvilNode, chain: ChainClient, tmp_path: Path
):
    """What an explorer does: recompile, compare the runtime code, check the creation input.

    The runtime code must match byte for byte, metadata hash included (the input holds exactly
    the sources and settings the artifacts were built with), except the escrow's immutables: its USDC
    address and EIP-712 domain caches, which the constructor writes into the code: those
    positions (solc's immutableReferences) are masked, and their values checked.
    """
    settings = settings_for(sepolia, tmp_path)
    await deploy_cli(settings, *argv())
    directory = settings.deployment_file.parent / "verify"
    created = creation_inputs(sepolia)
    contracts = json.loads((directory / "verify.json").read_text())["contracts"]
    assert [c["contract"] for c in contracts] == ["OwnerTimelock", "BookingEscrow"]
    for item in contracts:
        compiled = recompile(directory / item["standard_input_file"], item["contract"])
        on_chain = bytearray(await chain.get_code(item["address"]))
        runtime = bytes.fromhex(compiled["runtime"])
        immutables = set()
        for references in compiled["immutables"].values():
            for ref in references:
                start, end = ref["start"], ref["start"] + ref["length"]
                immutables.add(bytes(on_chain[start:end]))
                on_chain[start:end] = runtime[start:end]
        assert bytes(on_chain) == runtime, f"{item['contract']} runtime code differs"
        if item["contract"] == "BookingEscrow":
            # The token, the EIP-712 domain's cached chain id and verifying contract, ...
            for value in (to_bytes(USDC), BASE_SEPOLIA.to_bytes(32), to_bytes(item["address"])):
                assert value.rjust(32, b"\0") in immutables
        else:
            assert not immutables
        creation = bytes.fromhex(compiled["creation"] + item["constructor_arguments"])
        assert created[item["address"].lower()] == creation
        assert item["compiler_version"] == "v" + load_artifact(item["contract"]).solc


@pytest.mark.integration
@pytest.mark.parametrize(
    ("extra", "roles", "refusal"),
    [
        (
            {"usdc_address": ROLES["treasury"]},
            {},
            f"refusing USDC {ROLES['treasury']} on chain 84532",
        ),
        ({"owner_timelock_delay_seconds": 0}, {}, "owner timelock delay of 0 on chain 84532"),
        ({}, {"operator": "", "treasury": ""}, "missing --operator --treasury"),
        ({}, {"owner": "DEPLOYER"}, "the owner must not be the deployer"),
        (
            {},
            {"signer": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"},
            "anvil's published accounts",
        ),
        ({"deployer_private_key": None}, {}, "no deployer key: set BOOKME_DEPLOYER_KEY_FILE"),
        # A lost deployment volume: never a second escrow while the first one is configured.
        ({"escrow_address": ROLES["treasury"]}, {}, "restore that escrow's deployment file"),
    ],
)
async def test_refusals_send_nothing(
    sepolia: AnvilNode,
    chain: ChainClient,
    tmp_path: Path,
    extra: dict[str, Any],
    roles: dict[str, str],
    refusal: str,
):
    settings = settings_for(sepolia, tmp_path, **extra)
    if roles.get("owner") == "DEPLOYER":
        roles = {"owner": deployer_address()}
    with pytest.raises(OpsError, match=refusal):
        await deploy_cli(settings, *argv(**roles))
    assert await nonce(chain) == 0
    assert not settings.deployment_file.exists()


@pytest.mark.integration
async def test_refuses_when_circles_usdc_is_not_on_the_chain(
    sepolia: AnvilNode, chain: ChainClient, tmp_path: Path
):
    """A Sepolia chain id on an RPC without Circle's token (a wrong provider): nothing is sent."""
    sepolia.rpc("anvil_setCode", USDC, "0x")
    with pytest.raises(OpsError, match=f"no contract at the USDC address {USDC}"):
        await deploy_cli(settings_for(sepolia, tmp_path), *argv())
    assert await nonce(chain) == 0


def test_a_refusal_is_one_line_and_exit_code_2(
    sepolia: AnvilNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    settings = settings_for(sepolia, tmp_path, chain_id=8453)
    args = build_parser().parse_args(argv("--dry-run"))
    assert run_deploy_command(args, settings) == 2
    err = capsys.readouterr().err
    assert err.startswith("bookme deploy: ")
    assert err.count("\n") == 1
    assert "8453" in err
    assert "84532" in err


@pytest.mark.integration
async def test_on_a_local_chain_it_deploys_with_anvils_roles_and_funds_the_wallets(
    fresh_chain: AnvilNode, tmp_path: Path
):
    settings = Settings(
        _env_file=None,
        rpc_urls=[fresh_chain.http_url],
        chain_id=fresh_chain.chain_id,
        deployment_file=tmp_path / "deployment.json",
        confirmations=0,
    )
    dry = await deploy_cli(settings, "deploy", "--dry-run")
    assert "step 1: deploy MockUSDC" in dry
    assert "mint 10000000000 MockUSDC units to" in dry
    assert "gas after the steps before it" in dry  # a mint into the MockUSDC step 1 deploys
    out = await deploy_cli(settings, "deploy", "--if-missing")
    deployment = Deployment.read_json(settings.deployment_file)
    assert deployment.mock_usdc
    assert deployment.signer == fresh_chain.accounts[1].address
    assert "To verify" not in out  # MockUSDC deployments are never verified on an explorer
    again = await deploy_cli(settings, "deploy", "--if-missing")
    assert again.startswith("kept the deployment")
    assert Deployment.read_json(settings.deployment_file) == deployment
