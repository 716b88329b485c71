"""Read-side binding of the BookingEscrow contract (and the USDC balances it moves)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from typing import Any

from chain.artifacts import load_artifact
from chain.client import ChainClient
from chain.contract import BoundContract, ContractAbi
from chain.eip712 import BookingAuthorization
from chain.hexutil import address, hash32, to_bytes, to_hex

# Only what the backend reads from the token; real USDC and MockUSDC share these.
_ERC20_ABI: tuple[dict[str, Any], ...] = (
    {
        "type": "function",
        "name": "balanceOf",
        "stateMutability": "view",
        "inputs": [{"name": "account", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "allowance",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "decimals",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint8"}],
    },
)


@cache
def escrow_abi() -> ContractAbi:
    """The BookingEscrow ABI from the committed artifact (parsed once)."""
    return ContractAbi(load_artifact("BookingEscrow").abi)


@cache
def erc20_abi() -> ContractAbi:
    """balanceOf / allowance / decimals of an ERC-20 token."""
    return ContractAbi(_ERC20_ABI)


class OnChainBookingStatus(IntEnum):
    """The contract's ``BookingStatus`` (uint8)."""

    NONE = 0
    PAID = 1
    COMPLETED = 2
    CANCELLED = 3

    @property
    def is_final(self) -> bool:
        return self in (OnChainBookingStatus.COMPLETED, OnChainBookingStatus.CANCELLED)


@dataclass(frozen=True, kw_only=True, slots=True)
class OnChainBooking:
    """``getBooking``: the escrowed split fixed at payment time (amounts in USDC units)."""

    booking_id: str
    status: OnChainBookingStatus
    customer: str
    provider: str
    inviter: str
    amount: int
    platform_fee: int
    inviter_fee: int
    provider_amount: int
    release_time: int
    paid_at: int


@dataclass(frozen=True, kw_only=True, slots=True)
class FeePolicy:
    """The contract's fee policy in basis points."""

    platform_fee_bps: int
    platform_fee_with_inviter_bps: int
    inviter_fee_bps: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ContractDomain:
    """ERC-5267 ``eip712Domain()`` as the contract reports it."""

    fields: int
    name: str
    version: str
    chain_id: int
    verifying_contract: str
    salt: str
    extensions: tuple[int, ...]


def booking_id_bytes(chain_booking_id: str | bytes) -> bytes:
    """A chain booking id (0x-hex or 32 bytes) as bytes32, length checked."""
    raw = to_bytes(chain_booking_id)
    if len(raw) != 32:
        raise ValueError(f"a chain booking id is 32 bytes, got {len(raw)}")
    return raw


class EscrowReader:
    """View calls on one deployed BookingEscrow through a `ChainClient`."""

    def __init__(
        self, client: ChainClient, escrow_address: str, *, usdc_address: str | None = None
    ) -> None:
        self.contract = BoundContract(client, escrow_address, escrow_abi())
        self._usdc = address(usdc_address) if usdc_address else None

    @property
    def address(self) -> str:
        return self.contract.address

    async def get_booking(
        self, chain_booking_id: str | bytes, *, block: int | str = "latest"
    ) -> OnChainBooking:
        """The booking's on-chain state (status NONE and zero fields if never paid)."""
        raw_id = booking_id_bytes(chain_booking_id)
        ((status, customer, provider, inviter, amount, platform_fee, inviter_fee,
          provider_amount, release_time, paid_at),) = await self.contract.view(
            "getBooking", raw_id, block=block
        )  # fmt: skip
        return OnChainBooking(
            booking_id=hash32(raw_id),
            status=OnChainBookingStatus(status),
            customer=address(customer),
            provider=address(provider),
            inviter=address(inviter),
            amount=amount,
            platform_fee=platform_fee,
            inviter_fee=inviter_fee,
            provider_amount=provider_amount,
            release_time=release_time,
            paid_at=paid_at,
        )

    async def fee_policy(self) -> FeePolicy:
        platform, platform_with_inviter, inviter = await self.contract.view("feePolicy")
        return FeePolicy(
            platform_fee_bps=platform,
            platform_fee_with_inviter_bps=platform_with_inviter,
            inviter_fee_bps=inviter,
        )

    async def paused(self) -> bool:
        (value,) = await self.contract.view("paused")
        return bool(value)

    async def owed_balance(self, account: str) -> int:
        """USDC credited to ``account`` after a refused transfer, awaiting withdrawOwed."""
        (value,) = await self.contract.view("owedBalance", address(account))
        return int(value)

    async def total_owed(self) -> int:
        (value,) = await self.contract.view("totalOwed")
        return int(value)

    async def nonce_used(self, nonce: int) -> bool:
        (value,) = await self.contract.view("nonceUsed", nonce)
        return bool(value)

    async def hash_booking_authorization(self, auth: BookingAuthorization) -> str:
        """The contract's EIP-712 digest of ``auth``: what it signs against, and the ERC-3009
        nonce of a relayed payment of ``auth`` (chain/transfer_auth.py)."""
        (digest,) = await self.contract.view("hashBookingAuthorization", auth.as_abi_tuple())
        return hash32(digest)

    async def _address_view(self, name: str) -> str:
        (value,) = await self.contract.view(name)
        return address(value)

    async def owner(self) -> str:
        """The escrow's owner: an OwnerTimelock in every deployment chain/deploy.py makes."""
        return await self._address_view("owner")

    async def signer(self) -> str:
        return await self._address_view("signer")

    async def operator(self) -> str:
        return await self._address_view("operator")

    async def treasury(self) -> str:
        """The treasury new bookings pay their fee to (each booking keeps the one of its payment)."""
        return await self._address_view("treasury")

    async def usdc_address(self) -> str:
        """The token the escrow holds (read once from the contract unless configured)."""
        if self._usdc is None:
            self._usdc = await self._address_view("usdc")
        return self._usdc

    async def usdc_balance_of(self, account: str) -> int:
        token = BoundContract(self.contract.client, await self.usdc_address(), erc20_abi())
        (value,) = await token.view("balanceOf", address(account))
        return int(value)

    async def eip712_domain(self) -> ContractDomain:
        fields, name, version, chain_id, verifying, salt, extensions = await self.contract.view(
            "eip712Domain"
        )
        return ContractDomain(
            fields=int.from_bytes(fields, "big"),
            name=name,
            version=version,
            chain_id=chain_id,
            verifying_contract=address(verifying),
            salt=to_hex(salt),
            extensions=tuple(extensions),
        )
