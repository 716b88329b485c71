"""A deployment as a plan: every transaction known, and printable, before one is sent.

A contract's address follows from its deployer and nonce (CREATE: ``keccak(rlp([sender,
nonce]))[12:]``), so the plan names the OwnerTimelock before it exists and hands that address to
the escrow's constructor as its owner. ``bookme deploy --dry-run`` prints exactly what a real
run sends, and a real run checks that each contract lands where the plan said (another
transaction from the deployer in between aborts it before the next step).

Which USDC a chain gets, and whether the owner may skip the timelock delay, is decided here from
``chain/networks.py``, before anything is signed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils.crypto import keccak

from chain.artifacts import load_artifact
from chain.contract import ContractAbi
from chain.errors import DeploymentError
from chain.hexutil import address, to_bytes
from chain.networks import CANONICAL_USDC, LOCAL_CHAIN_IDS, is_local

# Off local chains, when no delay is configured: two days to notice and cancel a bad change.
DEFAULT_OWNER_DELAY_SECONDS = 48 * 3600


@dataclass(frozen=True, kw_only=True)
class Roles:
    """Who the escrow trusts: EIP-712 signer, operator, fee treasury, and the timelock's owner."""

    signer: str
    operator: str
    treasury: str
    owner: str


@dataclass(frozen=True, kw_only=True)
class PlannedTransaction:
    """One transaction of the plan; ``creates`` is the contract address it will deploy."""

    label: str
    to: str | None
    data: bytes
    value: int = 0
    creates: str | None = None


@dataclass(frozen=True, kw_only=True)
class DeployPlan:
    """Every transaction of one deployment, in order, from ``deployer`` starting at ``first_nonce``."""

    chain_id: int
    deployer: str
    first_nonce: int
    roles: Roles
    usdc: str
    mock_usdc: bool
    timelock: str
    escrow: str
    owner_delay_seconds: int
    transactions: tuple[PlannedTransaction, ...]


def create_address(sender: str, nonce: int) -> str:
    """The address a CREATE from ``sender`` at ``nonce`` deploys to."""
    nonce_bytes = nonce.to_bytes((nonce.bit_length() + 7) // 8, "big")
    # RLP of [20-byte sender, nonce]: both short strings, the list under 56 bytes.
    if len(nonce_bytes) == 1 and nonce_bytes[0] < 0x80:
        encoded_nonce = nonce_bytes
    else:
        encoded_nonce = bytes([0x80 + len(nonce_bytes)]) + nonce_bytes
    payload = bytes([0x80 + 20]) + to_bytes(address(sender)) + encoded_nonce
    return address(keccak(bytes([0xC0 + len(payload)]) + payload)[12:])


def owner_delay_for_chain(chain_id: int, configured: int | None) -> int:
    """The OwnerTimelock delay to deploy with: ``configured``, else 0 locally and 48 h elsewhere.

    A zero delay is refused off local chains: it would let one leaked owner key move the escrow
    at once, which is what the timelock exists to prevent.
    """
    local = is_local(chain_id)
    delay = configured if configured is not None else (0 if local else DEFAULT_OWNER_DELAY_SECONDS)
    if delay < 0:
        raise DeploymentError(f"the owner timelock delay cannot be negative ({delay})")
    if delay == 0 and not local:
        raise DeploymentError(
            f"refusing an owner timelock delay of 0 on chain {chain_id}: only local chains "
            f"{sorted(LOCAL_CHAIN_IDS)} may skip the delay"
        )
    return delay


def usdc_for_chain(chain_id: int, usdc_address: str | None) -> str | None:
    """The USDC the escrow takes (None: deploy MockUSDC, local chains only), or refuse.

    Off local chains it must be Circle's USDC for the chain id (chain/networks.py): a look-alike
    token would take customers' money into an escrow that pays out worthless units.
    """
    canonical = CANONICAL_USDC.get(chain_id)
    if usdc_address is None:
        if is_local(chain_id):
            return None
        hint = f"USDC on chain {chain_id} is {canonical}" if canonical else "pass the real USDC"
        raise DeploymentError(
            f"refusing to deploy MockUSDC on chain {chain_id}: only local chains "
            f"{sorted(LOCAL_CHAIN_IDS)}; {hint}"
        )
    if is_local(chain_id):
        return address(usdc_address)
    if canonical is None:
        raise DeploymentError(
            f"no canonical USDC is known for chain {chain_id} (known: "
            + ", ".join(f"{cid} {usdc}" for cid, usdc in sorted(CANONICAL_USDC.items()))
            + ")"
        )
    if address(usdc_address) != address(canonical):
        raise DeploymentError(
            f"refusing USDC {address(usdc_address)} on chain {chain_id}: Circle's USDC there is "
            f"{canonical}"
        )
    return address(canonical)


def timelock_constructor_args(delay: int, owner: str) -> tuple[Any, ...]:
    """OwnerTimelock(minDelay, proposers, executors): the owner account is both."""
    return (delay, [address(owner)], [address(owner)])


def escrow_constructor_args(usdc: str, roles: Roles, timelock: str) -> tuple[Any, ...]:
    """BookingEscrow(usdc, signer, operator, treasury, initialOwner = the timelock)."""
    return (
        address(usdc),
        address(roles.signer),
        address(roles.operator),
        address(roles.treasury),
        address(timelock),
    )


def _creation(name: str, at: str, *args: Any) -> PlannedTransaction:
    artifact = load_artifact(name)
    data = ContractAbi(artifact.abi).encode_deploy(artifact.bytecode, *args)
    return PlannedTransaction(label=f"deploy {name}", to=None, data=data, creates=at)


def _funding(
    usdc: str, wallets: Sequence[str], amount_units: int, eth_wei: int
) -> list[PlannedTransaction]:
    usdc_abi = ContractAbi(load_artifact("MockUSDC").abi)
    steps = [
        PlannedTransaction(
            label=f"mint {amount_units} MockUSDC units to {address(w)}",
            to=usdc,
            data=usdc_abi.encode_call("mint", address(w), amount_units),
        )
        for w in wallets
    ]
    if eth_wei:
        steps += [
            PlannedTransaction(
                label=f"send {eth_wei} wei to {address(w)}", to=address(w), data=b"", value=eth_wei
            )
            for w in wallets
        ]
    return steps


def plan_deployment(
    *,
    chain_id: int,
    deployer: str,
    nonce: int,
    roles: Roles,
    usdc_address: str | None = None,
    owner_delay_seconds: int | None = None,
    fund: Sequence[str] = (),
    amount_units: int = 0,
    fund_eth_wei: int = 0,
) -> DeployPlan:
    """Every transaction that deploys (MockUSDC,) OwnerTimelock and BookingEscrow, then funds."""
    usdc = usdc_for_chain(chain_id, usdc_address)
    delay = owner_delay_for_chain(chain_id, owner_delay_seconds)
    if fund and usdc is not None:
        raise DeploymentError("funding wallets needs the MockUSDC this command deploys")
    steps: list[PlannedTransaction] = []
    if usdc is None:
        usdc = create_address(deployer, nonce)
        steps.append(_creation("MockUSDC", usdc))
    timelock = create_address(deployer, nonce + len(steps))
    steps.append(
        _creation("OwnerTimelock", timelock, *timelock_constructor_args(delay, roles.owner))
    )
    escrow = create_address(deployer, nonce + len(steps))
    steps.append(
        _creation("BookingEscrow", escrow, *escrow_constructor_args(usdc, roles, timelock))
    )
    steps += _funding(usdc, fund, amount_units, fund_eth_wei)
    return DeployPlan(
        chain_id=chain_id,
        deployer=address(deployer),
        first_nonce=nonce,
        roles=roles,
        usdc=usdc,
        mock_usdc=usdc_address is None,
        timelock=timelock,
        escrow=escrow,
        owner_delay_seconds=delay,
        transactions=tuple(steps),
    )
