"""Does the chain we are connected to look like the one our settings describe?

Every process (worker, API, listener, `make dev`) asks the same questions, at start and now and
then: the chain id, contract code at the escrow address, the escrow's EIP-712 signing domain
(ERC-5267 ``eip712Domain()``), its fee policy, who holds the signer and operator roles, and
which token it holds. `observe` reads the answers, `compare` (pure) lists every difference from
what is expected, each as one line an operator can act on, e.g.
``signing domain version is "2", settings say "1"``.

A wrong chain id or a missing contract makes every other answer meaningless: `compare` then
reports that one difference only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from eth_abi.exceptions import DecodingError

from chain.client import ChainClient
from chain.eip712 import DOMAIN_NAME, DOMAIN_VERSION
from chain.errors import AllProvidersFailed, ExecutionReverted, WorldMismatch, WrongChain
from chain.escrow import ContractDomain, EscrowReader, FeePolicy
from chain.hexutil import address


class WorldCheck(StrEnum):
    """One question asked of the chain, in the order asked; the label of `bookme_world_check_ok`.

    The first two gate the rest: on another chain, or without an escrow's code at the address,
    the later questions have no answer.
    """

    CHAIN_ID = "chain_id"
    CONTRACT_CODE = "contract_code"
    SIGNING_DOMAIN = "signing_domain"
    FEE_POLICY = "fee_policy"
    SIGNER_ROLE = "signer_role"
    OPERATOR_ROLE = "operator_role"
    USDC = "usdc"


@dataclass(frozen=True, kw_only=True, slots=True)
class Difference:
    """What the chain says that the settings do not, as one line."""

    check: WorldCheck
    message: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ExpectedWorld:
    """The chain as the settings describe it; None = not checked here (e.g. no key configured)."""

    chain_id: int
    escrow: str
    fee_policy: FeePolicy | None = None
    usdc: str | None = None
    signer: str | None = None
    operator: str | None = None
    domain_name: str = DOMAIN_NAME
    domain_version: str = DOMAIN_VERSION


@dataclass(frozen=True, kw_only=True, slots=True)
class ObservedWorld:
    """What the chain answered; contract fields are None when there is no contract to ask."""

    chain_id: int
    code_present: bool
    domain: ContractDomain | None = None
    fee_policy: FeePolicy | None = None
    usdc: str | None = None
    signer: str | None = None
    operator: str | None = None


def mismatch(differences: Sequence[Difference]) -> WorldMismatch:
    """The error to raise for these differences: one line naming each."""
    return WorldMismatch(failure_line(differences), tuple(differences))


def failure_line(differences: Sequence[Difference]) -> str:
    """``chain check failed: <difference>; <difference>`` on one line."""
    return "chain check failed: " + "; ".join(d.message for d in differences)


def _say(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) and not value.startswith("0x") else str(value)


def _differs(check: WorldCheck, what: str, actual: object, expected: object) -> Difference:
    return Difference(
        check=check, message=f"{what} is {_say(actual)}, settings say {_say(expected)}"
    )


def _same_address(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.lower() == b.lower()


def _domain_differences(expected: ExpectedWorld, domain: ContractDomain) -> list[Difference]:
    pairs = (
        ("name", domain.name, expected.domain_name),
        ("version", domain.version, expected.domain_version),
        ("chain id", domain.chain_id, expected.chain_id),
    )
    found = [
        _differs(WorldCheck.SIGNING_DOMAIN, f"signing domain {field}", actual, wanted)
        for field, actual, wanted in pairs
        if actual != wanted
    ]
    if not _same_address(domain.verifying_contract, expected.escrow):
        found.append(
            _differs(
                WorldCheck.SIGNING_DOMAIN,
                "signing domain verifying contract",
                domain.verifying_contract,
                address(expected.escrow),
            )
        )
    return found


def _fee_differences(expected: FeePolicy, actual: FeePolicy) -> list[Difference]:
    return [
        _differs(WorldCheck.FEE_POLICY, f"on-chain {name}", getattr(actual, name), wanted)
        for name, wanted in (
            ("platform_fee_bps", expected.platform_fee_bps),
            ("platform_fee_with_inviter_bps", expected.platform_fee_with_inviter_bps),
            ("inviter_fee_bps", expected.inviter_fee_bps),
        )
        if getattr(actual, name) != wanted
    ]


def _role_differences(expected: ExpectedWorld, observed: ObservedWorld) -> list[Difference]:
    found: list[Difference] = []
    for check, role, wanted, actual in (
        (WorldCheck.SIGNER_ROLE, "signer", expected.signer, observed.signer),
        (WorldCheck.OPERATOR_ROLE, "operator", expected.operator, observed.operator),
    ):
        if wanted is not None and not _same_address(actual, wanted):
            found.append(
                Difference(
                    check=check,
                    message=f"the escrow's {role} is {actual}, "
                    f"settings' {role} key is {address(wanted)}",
                )
            )
    return found


def compare(expected: ExpectedWorld, observed: ObservedWorld) -> list[Difference]:
    """Every difference between the settings and the chain (empty: they agree)."""
    if observed.chain_id != expected.chain_id:
        return [_differs(WorldCheck.CHAIN_ID, "chain id", observed.chain_id, expected.chain_id)]
    if not observed.code_present:
        return [
            Difference(
                check=WorldCheck.CONTRACT_CODE,
                message=f"no contract code at escrow {address(expected.escrow)} on chain "
                f"{expected.chain_id} (wrong BOOKME_ESCROW_ADDRESS or deployment file?)",
            )
        ]
    if observed.domain is None:
        return [
            Difference(
                check=WorldCheck.CONTRACT_CODE,
                message=f"the contract at {address(expected.escrow)} does not answer "
                "eip712Domain(): not a BookingEscrow",
            )
        ]
    found = _domain_differences(expected, observed.domain)
    if expected.fee_policy is not None and observed.fee_policy is not None:
        found += _fee_differences(expected.fee_policy, observed.fee_policy)
    found += _role_differences(expected, observed)
    if expected.usdc is not None and not _same_address(observed.usdc, expected.usdc):
        found.append(
            _differs(WorldCheck.USDC, "the escrow's USDC", observed.usdc, address(expected.usdc))
        )
    return found


async def observe(client: ChainClient, escrow_address: str) -> ObservedWorld:
    """Read everything `compare` needs; provider outages propagate (`AllProvidersFailed`)."""
    try:
        chain_id = await client.chain_id()
    except AllProvidersFailed as exc:
        # A client built for the configured chain refuses a provider serving another one.
        wrong = exc.last_error
        if isinstance(wrong, WrongChain) and wrong.chain_id is not None:
            return ObservedWorld(chain_id=wrong.chain_id, code_present=False)
        raise
    if not await client.get_code(address(escrow_address)):
        return ObservedWorld(chain_id=chain_id, code_present=False)
    reader = EscrowReader(client, escrow_address)
    try:
        domain = await reader.eip712_domain()
    except (ExecutionReverted, DecodingError):
        # Reverted or undecodable: code is there, but not an escrow's.
        return ObservedWorld(chain_id=chain_id, code_present=True)
    return ObservedWorld(
        chain_id=chain_id,
        code_present=True,
        domain=domain,
        fee_policy=await reader.fee_policy(),
        usdc=await reader.usdc_address(),
        signer=await reader.signer(),
        operator=await reader.operator(),
    )


async def check_world(client: ChainClient, expected: ExpectedWorld) -> list[Difference]:
    """`observe` then `compare`."""
    return compare(expected, await observe(client, expected.escrow))


def unanswered(differences: Sequence[Difference]) -> frozenset[WorldCheck]:
    """The checks a gating difference (chain id, contract code) left without an answer."""
    order = list(WorldCheck)
    gates = [order.index(d.check) for d in differences if d.check in _GATES]
    return frozenset(order[min(gates) + 1 :]) if gates else frozenset()


_GATES = frozenset({WorldCheck.CHAIN_ID, WorldCheck.CONTRACT_CODE})
