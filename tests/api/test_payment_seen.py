"""What the customer sees before the confirmations, end to end on the real stack: the wallet
pays on anvil, our listener (2 confirmations) forwards the sighting, the real worker records it,
and `GET /bookings/{id}` and the event stream say "payment seen, n of 2" until PAID, or until a
reorg takes the payment's block away."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from bookme.settings import default_booking_policy
from chain.artifacts import load_artifact
from chain.contract import ContractAbi
from chain.eip712 import BookingAuthorization
from chain.escrow import escrow_abi
from listener.config import ListenerConfig
from listener.service import Listener
from listener.temporal_sink import TemporalSignalSink
from tests.api import test_chain_flows as chain_flows
from tests.api.conftest import ApiFactory
from tests.api.helpers import CUSTOMER_AUTH, SERVICE_AUTH, booking_body, running_server
from tests.api.test_chain_flows import Stack
from tests.api.test_stream import Frame, frames

pytestmark = pytest.mark.integration
# The chain-flows stack: anvil with the escrow deployed, a worker with the real activities.
stack = chain_flows.stack
chain_worker = chain_flows.chain_worker

GUARD_SECONDS = 90  # against a hung test only; nothing asserts on elapsed time
DEPTH = 2


@dataclass
class Customer:
    """One booking seen from the customer's side: its HTTP client and its open event stream."""

    http: httpx.AsyncClient
    booking_id: str
    frames: list[Frame] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def follow(self) -> None:
        url = f"/bookings/{self.booking_id}/stream"
        async with self.http.stream("GET", url, headers=CUSTOMER_AUTH) as response:
            assert response.status_code == 200
            async for frame in frames(response):
                if "id" in frame.fields:
                    self.frames.append(frame)
                    self.arrived.set()

    async def frame(self, event: str, **expected: Any) -> dict[str, Any]:
        """The first stream frame of type `event` whose data has the `expected` fields."""
        while True:
            for frame in self.frames:
                data = json.loads(frame.fields["data"])
                matches = all(data.get(k) == v for k, v in expected.items())
                if frame.fields.get("event") == event and matches:
                    return dict(data)
            self.arrived.clear()
            await self.arrived.wait()

    async def detail(self, until: str, value: Any) -> dict[str, Any]:
        """`GET /bookings/{id}` once `until` (a dotted path into it) has `value`."""
        while True:
            got = (
                await self.http.get(f"/bookings/{self.booking_id}", headers=CUSTOMER_AUTH)
            ).json()
            node: Any = got
            for part in until.split("."):
                node = None if node is None else node.get(part)
            if node == value:
                return dict(got)
            await asyncio.sleep(0.05)


@pytest.fixture
async def listener(
    stack: Stack, engine: AsyncEngine, temporal_client: Client, task_queue: str
) -> Listener:
    sink = TemporalSignalSink(
        temporal_client, policy=default_booking_policy(), task_queue=task_queue
    )
    config = ListenerConfig(
        chain_id=stack.anvil.chain_id,
        contract_address=stack.deployment.escrow,
        confirmations=DEPTH,
        start_block=stack.deployment.block_number,
        poll_interval=0.05,
        max_block_range=2000,
        head_stale_after=30.0,
    )
    return Listener(config=config, client=stack.chain, engine=engine, sink=sink, sightings=sink)


@pytest.fixture
async def customer(
    factory: ApiFactory,
    stack: Stack,
    chain_worker: None,
) -> AsyncIterator[Customer]:
    app = factory.app(
        settings={
            "rpc_urls": [stack.anvil.http_url],
            "escrow_address": stack.deployment.escrow,
            "confirmations": DEPTH,
            # The listener's push is what this test is about: no chain polling meanwhile.
            "push_grace_seconds": 120,
            "monitoring_window_seconds": 180,
        }
    )
    async with (
        running_server(app) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as http,
    ):
        created = await http.post("/bookings", json=booking_body(amount="40"), headers=SERVICE_AUTH)
        assert created.status_code == 201, created.text
        seen = Customer(http, created.json()["id"])
        follower = asyncio.create_task(seen.follow())
        try:
            await seen.frame("status", to_status="PENDING_PAYMENT")
            yield seen
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower


async def pay(customer: Customer, stack: Stack) -> str:
    """The customer's wallet pays with the authorization the API signed; the tx hash."""
    signed = await customer.http.post(
        f"/bookings/{customer.booking_id}/payment-authorization", headers=CUSTOMER_AUTH
    )
    assert signed.status_code == 200, signed.text
    body = signed.json()
    auth = BookingAuthorization.from_message(body["authorization"])
    escrow = stack.deployment.escrow
    usdc = ContractAbi(load_artifact("MockUSDC").abi)
    await stack.send(
        stack.customer, stack.deployment.usdc, usdc.encode_call("approve", escrow, auth.amount)
    )
    call = escrow_abi().encode_call(
        "createAndPayBooking", auth.as_abi_tuple(), bytes.fromhex(body["signature"][2:])
    )
    return await stack.send(stack.customer, escrow, call)


def summary(n: int) -> str:
    return f"payment seen, {n} of {DEPTH} confirmations"


async def test_the_customer_sees_the_payment_n_of_n_then_paid(
    customer: Customer,
    stack: Stack,
    listener: Listener,
) -> None:
    async with asyncio.timeout(GUARD_SECONDS):
        tx = await pay(customer, stack)
        for n in range(DEPTH):
            if n:
                stack.anvil.rpc("anvil_mine", "0x1")
            await listener.sync_once()
            detail = await customer.detail("live.payment_seen.summary", summary(n))
            assert detail["status"] == "PENDING_PAYMENT"
            assert detail["live"]["status"] == "PENDING_PAYMENT"
            assert detail["live"]["payment_seen"]["tx_hash"] == tx
            assert detail["live"]["payment_seen"]["required"] == DEPTH
            assert detail["blockchain_tx_hash"] is None  # nothing about money is written
            frame = await customer.frame("payment_seen", reason=summary(n))
            assert (frame["from_status"], frame["to_status"]) == ("PENDING_PAYMENT",) * 2
            assert frame["tx_hash"] == tx

        stack.anvil.rpc("anvil_mine", "0x1")
        await listener.sync_once()
        detail = await customer.detail("status", "PAID")
        assert detail["blockchain_tx_hash"] == tx
        assert detail["live"]["payment_seen"] is None
        await customer.frame("status", to_status="PAID")
        kinds = [json.loads(f.fields["data"])["kind"] for f in customer.frames]
        assert kinds == ["created", "payment_seen", "payment_seen", "payment_confirmed"]


async def test_a_reorg_before_the_confirmations_clears_what_the_customer_saw(
    customer: Customer,
    stack: Stack,
    listener: Listener,
) -> None:
    async with asyncio.timeout(GUARD_SECONDS):
        tx = await pay(customer, stack)
        await listener.sync_once()
        await customer.detail("live.payment_seen.summary", summary(0))

        stack.anvil.rpc("anvil_reorg", 1, [])  # the payment's block, replaced without it
        await listener.sync_once()
        detail = await customer.detail("live.payment_seen", None)
        assert detail["status"] == "PENDING_PAYMENT"
        assert detail["live"]["status"] == "PENDING_PAYMENT"
        cleared = await customer.frame("payment_seen", kind="payment_seen_cleared")
        assert cleared["tx_hash"] == tx
        assert cleared["to_status"] == "PENDING_PAYMENT"

        stack.anvil.rpc("anvil_mine", hex(DEPTH + 1))
        await listener.sync_once()
        detail = await customer.detail("live.payment_seen", None)
        assert detail["status"] == "PENDING_PAYMENT"
