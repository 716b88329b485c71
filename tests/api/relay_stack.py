"""The real stack for relayed payments: anvil with the escrow, a fresh migrated database, the
worker's own activities (the operator's ledger-backed sender among them) and the API.

The customer's wallet is a fresh key holding MockUSDC and no ETH at all: whatever it pays, the
platform's relayer has to send.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_utils.crypto import keccak
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.main import create_app
from bookme.embedded.anvil import AnvilNode
from bookme.settings import Settings
from chain.client import ChainClient
from chain.deploy import Deployment, deploy_local
from chain.escrow import EscrowReader
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade_async
from tests.api.helpers import JWT_SECRET, PROVIDER, SERVICE_AUTH, booking_body, serve, token
from worker import activity_dependencies, build_worker

FUNDS = 100 * 10**6
# Not one of anvil's funded accounts: this wallet never holds any ETH.
CUSTOMER_KEY = "0x" + keccak(b"bookme relayed-payment test customer").hex()
CUSTOMER = Account.from_key(CUSTOMER_KEY).address
CUSTOMER_AUTH = token("cust-no-eth", "customer", CUSTOMER)
PROVIDER_AUTH = token("prov-1", "provider", PROVIDER)


@dataclass
class RelayStack:
    api: httpx.AsyncClient
    anvil: AnvilNode
    chain: ChainClient
    deployment: Deployment
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    temporal: Client

    @property
    def escrow(self) -> EscrowReader:
        return EscrowReader(self.chain, self.deployment.escrow, usdc_address=self.deployment.usdc)

    async def create_booking(self, *, amount: str = "40", in_seconds: int = 3 * 86400) -> str:
        at = (datetime.now(UTC) + timedelta(seconds=in_seconds)).replace(microsecond=0)
        body = booking_body(
            customer_wallet=CUSTOMER,
            customer_id="cust-no-eth",
            amount=amount,
            scheduled_at=at.isoformat(),
        )
        created = await self.api.post("/bookings", json=body, headers=SERVICE_AUTH)
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    async def operator_nonce(self) -> int:
        return await self.chain.get_transaction_count(self.deployment.operator, "pending")

    async def ledger_rows(self) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(text("SELECT count(*) FROM tx_ledger")) or 0)


def sign_typed_data(typed_data: dict[str, Any], private_key: str = CUSTOMER_KEY) -> str:
    """What a wallet's eth_signTypedData_v4 returns for the JSON the API handed out."""
    signed = Account.sign_typed_data(private_key, full_message=typed_data)
    return "0x" + bytes(signed.signature).hex()


async def ask_transfer(api: httpx.AsyncClient, booking_id: str) -> dict[str, Any]:
    asked = await api.post(
        f"/bookings/{booking_id}/payment-authorization",
        params={"relayed": "true"},
        headers=CUSTOMER_AUTH,
    )
    assert asked.status_code == 200, asked.text
    body: dict[str, Any] = asked.json()
    return body


def payment_body(transfer: dict[str, Any], signature: str) -> dict[str, str]:
    return {
        "signature": signature,
        "validAfter": transfer["validAfter"],
        "validBefore": transfer["validBefore"],
    }


def relay_settings(
    database_url: str, anvil: AnvilNode, deployment: Deployment, **overrides: Any
) -> Settings:
    accounts = anvil.accounts
    values: dict[str, Any] = {
        "database_url": database_url,
        "temporal_address": "unused:0",  # the client is passed in
        "task_queue": f"relay-{uuid.uuid4().hex[:10]}",
        "rpc_urls": [anvil.http_url],
        "chain_id": 31337,
        "escrow_address": deployment.escrow,
        "usdc_address": deployment.usdc,
        "deployment_file": "/nonexistent/deployment.json",
        "signer_private_key": SecretStr(accounts[5].private_key),
        "operator_private_key": SecretStr(accounts[6].private_key),
        "jwt_secret": SecretStr(JWT_SECRET),
        "jwt_algorithm": "HS256",
        "confirmations": 1,
        "push_grace_seconds": 0,
        "poll_interval_seconds": 1,
        "monitoring_window_seconds": 120,
        "worker_metrics_port": 0,
        "world_check_interval_seconds": 0,
        "rate_limit_per_minute": 1000,
        "signature_rate_limit_per_minute": 1000,
        "relay_rate_limit_per_minute": 1000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
async def relay_chain(fresh_chain: AnvilNode) -> AsyncIterator[tuple[ChainClient, Deployment]]:
    accounts = fresh_chain.accounts
    async with ChainClient([fresh_chain.http_url], expected_chain_id=31337) as client:
        deployment = await deploy_local(
            client,
            accounts[0].private_key,
            signer_address=accounts[5].address,
            operator_address=accounts[6].address,
            treasury_address=accounts[7].address,
            fund=[CUSTOMER],
            amount_units=FUNDS,
        )
        yield client, deployment


@pytest.fixture
async def relay_stack(
    database_url: str,
    fresh_chain: AnvilNode,
    relay_chain: tuple[ChainClient, Deployment],
    temporal_client: Client,
) -> AsyncIterator[RelayStack]:
    """The worker (every activity, the relay among them) and the API on one database."""
    client, deployment = relay_chain
    await upgrade_async(database_url)
    settings = relay_settings(database_url, fresh_chain, deployment)
    engine = make_engine(database_url, pool_size=2)
    app = create_app(settings, registry=CollectorRegistry(), temporal_client=temporal_client)
    try:
        async with (
            activity_dependencies(settings, registry=CollectorRegistry()) as activities,
            build_worker(temporal_client, settings, activities),
            serve(app) as api,
        ):
            yield RelayStack(
                api=api,
                anvil=fresh_chain,
                chain=client,
                deployment=deployment,
                settings=settings,
                sessions=make_session_factory(engine),
                temporal=temporal_client,
            )
    finally:
        await engine.dispose()


def api_with(stack: RelayStack, **overrides: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """Another API process over the same worker and chain, with other settings."""
    settings = stack.settings.model_copy(update=overrides)
    return serve(create_app(settings, registry=CollectorRegistry(), temporal_client=stack.temporal))
