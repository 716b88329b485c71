"""The demo's wallets on chain: fresh customer/provider/inviter keys, funding, sends, balances.

Authorizations come back from the API as the EIP-712 message (camelCase, decimal strings);
`chain.eip712`'s ``from_message`` reads them. The two ``*_from_api`` names stay for the bench
and chaos tools that import them from here.
"""

from __future__ import annotations

import asyncio

from eth_account import Account

from bookme.demo.errors import DemoFailure
from bookme.demo.runs import Party
from chain.artifacts import load_artifact
from chain.client import ChainClient
from chain.contract import ContractAbi
from chain.deploy import Deployment
from chain.eip712 import BookingAuthorization, CancellationAuthorization
from chain.escrow import EscrowReader, escrow_abi
from chain.keys import TransactionKey
from chain.sender import TransactionSender

CUSTOMER_FUNDS = 1_000 * 10**6
GASLESS_FUNDS = 100 * 10**6
GAS_FUNDS_WEI = 10 * 10**18

booking_authorization_from_api = BookingAuthorization.from_message
cancellation_authorization_from_api = CancellationAuthorization.from_message


class Wallets:
    """Three fresh wallets (only the customer's sends), the escrow and the balances it moves."""

    def __init__(self, chain: ChainClient, deployment: Deployment) -> None:
        self.chain = chain
        self.deployment = deployment
        self.escrow = deployment.escrow
        self.reader = EscrowReader(chain, deployment.escrow, usdc_address=deployment.usdc)
        self.usdc_abi = ContractAbi(load_artifact("MockUSDC").abi)
        self.abi = escrow_abi()
        customer, provider, inviter, gasless = (Account.create() for _ in range(4))
        self.customer_address: str = customer.address
        self.provider_address: str = provider.address
        self.inviter_address: str = inviter.address
        # Booking 6's customer: USDC and never any ETH; it pays with one signature.
        self.gasless_address: str = gasless.address
        self.gasless_key: str = "0x" + bytes(gasless.key).hex()
        self.customer = TransactionSender(
            chain, TransactionKey(customer.key.hex()), chain_id=deployment.chain_id
        )
        self.parties = (
            Party(label="customer", address=customer.address),
            Party(label="provider", address=provider.address),
            Party(label="inviter", address=inviter.address),
            Party(label="treasury", address=deployment.treasury),
            Party(label="escrow", address=deployment.escrow),
            Party(label="gasless", address=gasless.address),
        )

    async def send(self, to: str, data: bytes) -> str:
        """Send from the customer's wallet and wait; a revert fails the step."""
        sent, receipt = await self.customer.send_and_wait(to=to, data=data)
        if not receipt.succeeded:
            raise DemoFailure(f"transaction {sent.tx_hash} reverted")
        return sent.tx_hash

    async def call_escrow(self, function: str, *args: object) -> str:
        """The customer's wallet calls the escrow (pay, complete, cancel)."""
        return await self.send(self.escrow, self.abi.encode_call(function, *args))

    async def balances(self) -> dict[str, int]:
        values = await asyncio.gather(
            *(self.reader.usdc_balance_of(p.address) for p in self.parties)
        )
        return {p.address: v for p, v in zip(self.parties, values, strict=True)}

    async def eth_of_gasless(self) -> int:
        return await self.chain.get_balance(self.gasless_address)

    async def chain_now(self) -> int:
        block = await self.chain.get_block("latest")
        if block is None:
            raise DemoFailure("the chain has no latest block")
        return block.timestamp

    async def skip_chain_time(self, seconds: int) -> None:
        """Move anvil's clock forward and mine, so the next block is that much later."""
        await self.chain.request("evm_increaseTime", [seconds])
        await self.chain.request("evm_mine", [])

    async def fund_customer(self) -> None:
        """Gas by anvil_setBalance, USDC by MockUSDC's open mint, one approval for all bookings."""
        await self.chain.request("anvil_setBalance", [self.customer_address, hex(GAS_FUNDS_WEI)])
        await self.send(
            self.deployment.usdc,
            self.usdc_abi.encode_call("mint", self.customer_address, CUSTOMER_FUNDS),
        )
        await self.send(
            self.deployment.usdc,
            self.usdc_abi.encode_call("approve", self.escrow, CUSTOMER_FUNDS),
        )
        # MockUSDC's mint is open: the customer's wallet mints for the gasless one (no ETH sent).
        await self.send(
            self.deployment.usdc,
            self.usdc_abi.encode_call("mint", self.gasless_address, GASLESS_FUNDS),
        )
