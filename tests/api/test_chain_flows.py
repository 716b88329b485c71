"""Full flows through HTTP only, against anvil: the customer's wallet really signs and sends
the payment, completion and cancellation transactions with what the API handed out, and the
real activities (store, signer, chain observer, operator sender) drive the booking to its end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from activities import BookingStore, ChainActivities, Signer, build_activities
from bookme.embedded.anvil import AnvilNode, DevAccount
from chain.artifacts import load_artifact
from chain.client import ChainClient
from chain.contract import ContractAbi
from chain.deploy import Deployment, deploy_local
from chain.eip712 import BookingAuthorization, CancellationAuthorization, Eip712Domain
from chain.escrow import EscrowReader, escrow_abi
from chain.keys import TransactionKey
from chain.operator import OperatorSender
from chain.sender import TransactionSender
from tests.api.conftest import ApiFactory
from tests.api.helpers import CUSTOMER, PROVIDER, SERVICE_AUTH, booking_body, serve, token
from workflows import BookingWorkflow

pytestmark = pytest.mark.integration

GUARD_SECONDS = 90  # against a hung test only; nothing asserts on elapsed time
FUNDS = 1_000 * 10**6


@dataclass
class Stack:
    anvil: AnvilNode
    chain: ChainClient
    deployment: Deployment
    customer: DevAccount
    provider: DevAccount

    def wallet(self, account: DevAccount) -> TransactionSender:
        return TransactionSender(self.chain, TransactionKey(account.private_key), chain_id=31337)

    async def send(self, account: DevAccount, to: str, data: bytes) -> str:
        sent, receipt = await self.wallet(account).send_and_wait(to=to, data=data)
        assert receipt.succeeded, sent.tx_hash
        return sent.tx_hash

    async def usdc(self, account: DevAccount) -> int:
        return await EscrowReader(
            self.chain, self.deployment.escrow, usdc_address=self.deployment.usdc
        ).usdc_balance_of(account.address)


@pytest.fixture
async def stack(fresh_chain: AnvilNode) -> AsyncIterator[Stack]:
    accounts = fresh_chain.accounts
    customer, provider = accounts[1], accounts[2]
    assert (customer.address, provider.address) == (CUSTOMER, PROVIDER)
    async with ChainClient([fresh_chain.http_url], expected_chain_id=31337) as chain:
        deployment = await deploy_local(
            chain,
            accounts[0].private_key,
            signer_address=accounts[5].address,
            operator_address=accounts[6].address,
            treasury_address=accounts[7].address,
            fund=[customer.address],
            amount_units=FUNDS,
        )
        yield Stack(fresh_chain, chain, deployment, customer, provider)


@pytest.fixture
async def chain_worker(
    temporal_client: Client,
    sessions: async_sessionmaker[AsyncSession],
    task_queue: str,
    stack: Stack,
) -> AsyncIterator[None]:
    escrow = stack.deployment.escrow
    reader = EscrowReader(stack.chain, escrow, usdc_address=stack.deployment.usdc)
    operator = TransactionSender(
        stack.chain, TransactionKey(stack.anvil.accounts[6].private_key), chain_id=31337
    )
    activities = build_activities(
        store=BookingStore(sessions, escrow),
        signer=Signer(
            sessions,
            signer_key=SecretStr(stack.anvil.accounts[5].private_key),
            domain=Eip712Domain(chain_id=31337, verifying_contract=escrow),
        ),
        chain=ChainActivities(
            stack.chain, reader, OperatorSender(operator, reader), chain_id=31337
        ),
    )
    async with Worker(
        temporal_client, task_queue=task_queue, workflows=[BookingWorkflow], activities=activities
    ):
        yield


@pytest.fixture
async def api(
    factory: ApiFactory, stack: Stack, chain_worker: None
) -> AsyncIterator[httpx.AsyncClient]:
    app = factory.app(
        settings={
            "rpc_urls": [stack.anvil.http_url],
            "escrow_address": stack.deployment.escrow,
            "confirmations": 1,
            "push_grace_seconds": 0,
            "poll_interval_seconds": 1,
            "monitoring_window_seconds": 120,
        }
    )
    async with serve(app) as client:
        yield client


CUSTOMER_AUTH = token("cust-1", "customer", CUSTOMER)
PROVIDER_AUTH = token("prov-1", "provider", PROVIDER)


async def wait_for_status(client: httpx.AsyncClient, booking_id: str, status: str) -> None:
    while True:
        row = (await client.get(f"/bookings/{booking_id}", headers=CUSTOMER_AUTH)).json()
        if row["status"] == status:
            return
        assert row["status"] not in ("FAILED",), row
        await asyncio.sleep(0.2)


async def pay(api: httpx.AsyncClient, stack: Stack) -> tuple[str, dict[str, Any]]:
    """Create a booking and pay it from the customer's wallet; returns (id, booking)."""
    created = await api.post("/bookings", json=booking_body(amount="40"), headers=SERVICE_AUTH)
    assert created.status_code == 201, created.text
    booking = created.json()
    signed = await api.post(
        f"/bookings/{booking['id']}/payment-authorization", headers=CUSTOMER_AUTH
    )
    assert signed.status_code == 200, signed.text
    body = signed.json()
    assert body["contract"] == stack.deployment.escrow
    a = body["authorization"]
    auth = BookingAuthorization(
        booking_id=a["bookingId"],
        customer=a["customer"],
        provider=a["provider"],
        inviter=a["inviter"],
        amount=int(a["amount"]),
        platform_fee_rate=int(a["platformFeeRate"]),
        inviter_fee_rate=int(a["inviterFeeRate"]),
        release_time=int(a["releaseTime"]),
        expiry=int(a["expiry"]),
        nonce=int(a["nonce"]),
    )
    escrow = stack.deployment.escrow
    await stack.send(
        stack.customer,
        stack.deployment.usdc,
        ContractAbi(load_artifact("MockUSDC").abi).encode_call("approve", escrow, auth.amount),
    )
    tx = await stack.send(
        stack.customer,
        escrow,
        escrow_abi().encode_call(
            "createAndPayBooking", auth.as_abi_tuple(), bytes.fromhex(body["signature"][2:])
        ),
    )
    reported = await api.post(
        f"/bookings/{booking['id']}/transactions",
        json={"tx_hash": tx, "kind": "payment"},
        headers=CUSTOMER_AUTH,
    )
    assert reported.status_code == 202, reported.text
    stack.anvil.rpc("anvil_mine", "0x2")  # past the confirmation depth
    await wait_for_status(api, booking["id"], "PAID")
    return booking["id"], booking


async def test_pay_then_complete(api: httpx.AsyncClient, stack: Stack) -> None:
    async with asyncio.timeout(GUARD_SECONDS):
        before = await stack.usdc(stack.customer)
        booking_id, booking = await pay(api, stack)
        assert await stack.usdc(stack.customer) == before - 40 * 10**6

        tx = await stack.send(
            stack.customer,
            stack.deployment.escrow,
            escrow_abi().encode_call(
                "completeService", bytes.fromhex(booking["chain_booking_id"][2:])
            ),
        )
        reported = await api.post(
            f"/bookings/{booking_id}/transactions",
            json={"tx_hash": tx, "kind": "completion"},
            headers=CUSTOMER_AUTH,
        )
        assert reported.status_code == 202, reported.text
        stack.anvil.rpc("anvil_mine", "0x2")
        await wait_for_status(api, booking_id, "COMPLETED")
        assert await stack.usdc(stack.provider) == 36 * 10**6  # 40 minus the 10 % platform fee

        events = (await api.get(f"/bookings/{booking_id}/events", headers=PROVIDER_AUTH)).json()
        statuses = [e["to_status"] for e in events["items"] if e["to_status"] != e["from_status"]]
        # The customer's report opened a window; only the chain's event moved the status.
        assert statuses == ["PENDING_PAYMENT", "PAID", "COMPLETED"]


async def test_pay_then_provider_cancels(api: httpx.AsyncClient, stack: Stack) -> None:
    async with asyncio.timeout(GUARD_SECONDS):
        before = await stack.usdc(stack.customer)
        booking_id, _ = await pay(api, stack)
        response = await api.post(
            f"/bookings/{booking_id}/cancellation",
            json={"reason": "provider unavailable"},
            headers=PROVIDER_AUTH,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "PENDING_CANCELLATION"
        a = body["authorization"]
        auth = CancellationAuthorization(
            booking_id=a["bookingId"],
            customer_amount=int(a["customerAmount"]),
            provider_amount=int(a["providerAmount"]),
            platform_amount=int(a["platformAmount"]),
            inviter_amount=int(a["inviterAmount"]),
            reason=a["reason"],
            expiry=int(a["expiry"]),
            nonce=int(a["nonce"]),
        )
        tx = await stack.send(
            stack.provider,
            stack.deployment.escrow,
            escrow_abi().encode_call(
                "cancelBooking", auth.as_abi_tuple(), bytes.fromhex(body["signature"][2:])
            ),
        )
        reported = await api.post(
            f"/bookings/{booking_id}/transactions",
            json={"tx_hash": tx, "kind": "cancellation"},
            headers=PROVIDER_AUTH,
        )
        assert reported.status_code == 202, reported.text
        stack.anvil.rpc("anvil_mine", "0x2")
        await wait_for_status(api, booking_id, "CANCELLED")
        assert await stack.usdc(stack.customer) == before  # refunded in full
        detail = (await api.get(f"/bookings/{booking_id}", headers=CUSTOMER_AUTH)).json()
        assert detail["status"] == "CANCELLED"


async def test_health_is_green_on_the_real_stack(
    api: httpx.AsyncClient, stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # No listener runs here: its checkpoint is what keeps the report red.
    report = (await api.get("/health")).json()
    assert report["checks"]["chain"]["ok"] is True
    assert report["checks"]["contract"]["ok"] is True
    assert report["checks"]["listener"]["ok"] is False
    assert "checkpoint" in report["checks"]["listener"]["detail"]
