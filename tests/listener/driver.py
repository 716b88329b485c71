"""Drives a freshly deployed escrow on anvil fast enough to emit thousands of events."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address

from bookme.embedded.anvil import AnvilNode
from chain.artifacts import load_artifact
from chain.client import ChainClient
from chain.contract import ContractAbi
from chain.deploy import Deployment, deploy_local
from chain.eip712 import ZERO_ADDRESS, BookingAuthorization, Eip712Domain, chain_booking_id
from chain.events import BOOKING_CREATED_AND_PAID_TOPIC
from chain.signing import sign_booking_authorization

USDC = 10**6
AMOUNT = 10 * USDC


@dataclass(frozen=True)
class Payment:
    booking_uuid: str
    chain_booking_id: str
    tx_hash: str


class EscrowDriver:
    """Deployed MockUSDC + escrow, a funded customer, and raw JSON-RPC helpers."""

    def __init__(self, node: AnvilNode, deployment: Deployment) -> None:
        self.node = node
        self.deployment = deployment
        self.escrow = deployment.escrow
        self.accounts = node.accounts
        self.customer = node.accounts[4]
        self.operator = node.accounts[2]
        self.signer_key = node.accounts[1].private_key
        self.escrow_abi = ContractAbi(load_artifact("BookingEscrow").abi)
        self.usdc_abi = ContractAbi(load_artifact("MockUSDC").abi)
        self.domain = Eip712Domain(chain_id=node.chain_id, verifying_contract=self.escrow)
        self._nonces = itertools.count(1)
        self._http = httpx.AsyncClient(timeout=60.0)
        self._ids = itertools.count(1)

    @classmethod
    async def deploy(cls, node: AnvilNode) -> EscrowDriver:
        accounts = node.accounts
        async with ChainClient([node.http_url]) as client:
            deployment = await deploy_local(
                client,
                accounts[0].private_key,
                signer_address=accounts[1].address,
                operator_address=accounts[2].address,
                treasury_address=accounts[3].address,
                fund=[accounts[4].address],
                amount_units=10**12 * USDC,
            )
        driver = cls(node, deployment)
        await driver.transact(
            driver.customer.address,
            deployment.usdc,
            driver.usdc_abi.encode_call("approve", driver.escrow, 2**256 - 1),
        )
        return driver

    async def close(self) -> None:
        await self._http.aclose()

    async def rpc(self, method: str, *params: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        answer = (await self._http.post(self.node.http_url, json=body)).json()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    async def transact(self, sender: str, to: str, data: bytes) -> str:
        """eth_sendTransaction from an unlocked dev account; returns the tx hash."""
        return str(
            await self.rpc(
                "eth_sendTransaction",
                {"from": sender, "to": to, "data": "0x" + data.hex(), "gas": hex(500_000)},
            )
        )

    async def head(self) -> int:
        return int(await self.rpc("eth_blockNumber"), 16)

    async def block_hash(self, number: int) -> str:
        block = await self.rpc("eth_getBlockByNumber", hex(number), False)
        return str(block["hash"])

    async def mine(self, blocks: int = 1) -> None:
        await self.rpc("anvil_mine", hex(blocks))

    async def receipt(self, tx_hash: str) -> dict[str, Any]:
        # A wait, not a speed check: a loaded 2-core machine can take seconds to mine.
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            receipt = await self.rpc("eth_getTransactionReceipt", tx_hash)
            if receipt:
                assert int(receipt["status"], 16) == 1, receipt
                return dict(receipt)
            await asyncio.sleep(0.01)
        raise AssertionError(f"no receipt for {tx_hash} within 30 s")

    def _pay_data(self, booking_uuid: str, now: int) -> tuple[str, bytes]:
        auth = BookingAuthorization(
            booking_id=chain_booking_id(booking_uuid),
            customer=self.customer.address,
            provider=self.accounts[5].address,
            inviter=ZERO_ADDRESS,
            amount=AMOUNT,
            platform_fee_rate=1000,
            inviter_fee_rate=0,
            release_time=now + 7200,
            # Within the contract's MAX_AUTH_TTL (1 h), with room for pay_many's later blocks.
            expiry=now + 3000,
            nonce=next(self._nonces),
        )
        signed = sign_booking_authorization(self.domain, auth, self.signer_key)
        signature = bytes.fromhex(signed.signature[2:])
        data = self.escrow_abi.encode_call("createAndPayBooking", auth.as_abi_tuple(), signature)
        return auth.booking_id, data

    async def _now(self) -> int:
        block = await self.rpc("eth_getBlockByNumber", "latest", False)
        return int(block["timestamp"], 16)

    async def pay(self, booking_uuid: str | None = None) -> Payment:
        """One payment in its own block (automine); waits for the receipt."""
        booking_uuid = booking_uuid or str(uuid.uuid4())
        cbid, data = self._pay_data(booking_uuid, await self._now())
        tx = await self.transact(self.customer.address, self.escrow, data)
        await self.receipt(tx)
        return Payment(booking_uuid, cbid, tx)

    async def pay_many(self, count: int, *, per_block: int = 1) -> list[Payment]:
        """`count` payments, `per_block` to a block (automine off while filling a block)."""
        now = await self._now()
        payments: list[Payment] = []
        if per_block == 1:
            for _ in range(count):
                booking_uuid = str(uuid.uuid4())
                cbid, data = self._pay_data(booking_uuid, now)
                tx = await self.transact(self.customer.address, self.escrow, data)
                payments.append(Payment(booking_uuid, cbid, tx))
            await self.receipt(payments[-1].tx_hash)
            return payments
        await self.rpc("evm_setAutomine", False)
        try:
            for start in range(0, count, per_block):
                for _ in range(min(per_block, count - start)):
                    booking_uuid = str(uuid.uuid4())
                    cbid, data = self._pay_data(booking_uuid, now)
                    tx = await self.transact(self.customer.address, self.escrow, data)
                    payments.append(Payment(booking_uuid, cbid, tx))
                await self.rpc("evm_mine")
        finally:
            await self.rpc("evm_setAutomine", True)
        await self.receipt(payments[-1].tx_hash)
        return payments

    async def complete(self, chain_booking_id_hex: str) -> str:
        data = self.escrow_abi.encode_call(
            "completeService", bytes.fromhex(chain_booking_id_hex[2:])
        )
        tx = await self.transact(self.customer.address, self.escrow, data)
        await self.receipt(tx)
        return tx


# Runtime code of a stub that emits LOG2(topic0=calldata[0:32], topic1=calldata[32:64],
# data=calldata[64:]): real logs with the escrow's exact encoding, without the signing
# cost of 27 ms per payment that would make thousands of events take minutes.
EMITTER_RUNTIME = "0x602035600035604036038060406000376000a200"
EMITTER_ADDRESS = "0x00000000000000000000000000000000e0e0e0e0"


class EventEmitter:
    """Emits escrow-shaped BookingCreatedAndPaid logs from a fixed address, fast."""

    def __init__(self, driver: EscrowDriver) -> None:
        self.driver = driver
        self.address = to_checksum_address(EMITTER_ADDRESS)

    async def install(self) -> None:
        await self.driver.rpc("anvil_setCode", self.address, EMITTER_RUNTIME)

    def payment_calldata(self, chain_booking_id_hex: str, amount: int = AMOUNT) -> bytes:
        accounts = self.driver.accounts
        data = abi_encode(
            ["address", "address", "address", "uint256", "uint256", "uint256"],
            [accounts[4].address, accounts[5].address, ZERO_ADDRESS, amount, 1000, 0],
        )
        return (
            bytes.fromhex(BOOKING_CREATED_AND_PAID_TOPIC[2:])
            + bytes.fromhex(chain_booking_id_hex[2:])
            + data
        )

    async def emit(self, count: int, *, per_block: int = 1, senders: int = 4) -> list[str]:
        """`count` payments (fresh chain booking ids), `per_block` logs to a block.

        With one sender every payment gets its own block; parallel senders now and then share.
        """
        if per_block == 1:
            addresses = [a.address for a in self.driver.accounts[6 : 6 + senders]]
            shares = [range(i, count, len(addresses)) for i in range(len(addresses))]
            streams = await asyncio.gather(
                *(
                    self._send_all(sender, len(share))
                    for sender, share in zip(addresses, shares, strict=True)
                )
            )
            ids = [cbid for stream in streams for cbid, _ in stream]
            for stream in streams:
                if stream:
                    await self.driver.receipt(stream[-1][1])
            return ids
        await self.driver.rpc("evm_setAutomine", False)
        ids = []
        try:
            for start in range(0, count, per_block):
                sent = await self._send_all(
                    self.driver.accounts[6].address, min(per_block, count - start)
                )
                ids.extend(cbid for cbid, _ in sent)
                await self.driver.rpc("evm_mine")
        finally:
            await self.driver.rpc("evm_setAutomine", True)
        return ids

    async def _send_all(self, sender: str, count: int) -> list[tuple[str, str]]:
        sent = []
        for _ in range(count):
            cbid = chain_booking_id(str(uuid.uuid4()))
            tx = await self.driver.transact(sender, self.address, self.payment_calldata(cbid))
            sent.append((cbid, tx))
        return sent
