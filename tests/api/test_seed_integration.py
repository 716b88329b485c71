"""The seed's marketplace integration, end to end on the real stack.

The marketplace's database has its own `users` and `bookings` tables (the seed's shapes); our
migrations run over them. Then, as in the seed: the marketplace's app inserts a booking row
its own way; the customer, signed in with the identity provider (an ES256 token carrying only
`sub`, from a locally served JWKS), asks the seed's path for a payment authorization; the
customer's wallet pays and later completes on anvil; the real worker (every activity, the
webhook relay) drives the booking; the marketplace's receiver gets `booking.paid` then
`booking.completed`, each verified with the README's snippet; and the provider's
`users.total_earnings` moved by their share, to the base unit.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.main import create_app
from bookme.embedded.anvil import AnvilNode
from bookme.schedules import ensure_webhook_relay
from bookme.settings import Settings
from chain.artifacts import load_artifact
from chain.client import ChainClient
from chain.contract import ContractAbi
from chain.deploy import Deployment, deploy_local
from chain.eip712 import BookingAuthorization
from chain.escrow import escrow_abi
from chain.keys import TransactionKey
from chain.sender import TransactionSender
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade_async
from db.webhook_endpoints import SecretBox, create_endpoint
from tests.api.helpers import CUSTOMER, PROVIDER, serve
from tests.api.jwks import APP_ID, ISSUER, bearer, es256_key, privy_token, serve_jwks
from tests.db.legacy import LEGACY_DDL
from tests.db.seed_users import SEED_USERS_DDL, add_user
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_readme_snippet import readme_verify
from worker import activity_dependencies, build_worker

pytestmark = pytest.mark.integration

GUARD_SECONDS = 150  # against a hung test only; nothing asserts on elapsed time
FUNDS = 1_000 * 10**6
PRICE = Decimal("40.00")  # whole USDC, as the marketplace's `amount` column holds it
CAROL_DID = "did:privy:cm-carol"


@dataclass(frozen=True)
class Marketplace:
    sessions: async_sessionmaker[AsyncSession]
    carol: uuid.UUID  # the customer, referred by ivy
    pat: uuid.UUID  # the provider
    ivy: uuid.UUID  # the inviter

    async def insert_booking(self, scheduled_at: datetime) -> uuid.UUID:
        """The seed app's own INSERT, after our migrations: no column of ours."""
        booking_id = uuid.uuid4()
        async with self.sessions.begin() as session:
            await session.execute(
                text(
                    "INSERT INTO bookings (id, service_id, customer_id, provider_id, scheduled_at,"
                    " amount, status) VALUES (:id, 'haircut', :customer, :provider, :at, :amount,"
                    " 'PENDING_PAYMENT')"
                ),
                {
                    "id": booking_id,
                    "customer": str(self.carol),
                    "provider": str(self.pat),
                    "at": scheduled_at,
                    "amount": PRICE,
                },
            )
        return booking_id

    async def one(self, sql: str, **params: Any) -> Any:
        async with self.sessions() as session:
            return (await session.execute(text(sql), params)).one()


@pytest.fixture
async def chain(fresh_chain: AnvilNode) -> AsyncIterator[tuple[ChainClient, Deployment]]:
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
async def marketplace(database_url: str) -> AsyncIterator[Marketplace]:
    engine = make_engine(database_url, pool_size=2)
    sessions = make_session_factory(engine)
    try:
        async with sessions.begin() as session:  # the marketplace's tables, before us
            for statement in (SEED_USERS_DDL, *LEGACY_DDL):
                await session.execute(text(statement))
        await upgrade_async(database_url)
        ivy = await add_user(sessions, wallet="0x90F79bf6EB2c4f870365E785982E1f101E93b906")
        pat = await add_user(sessions, wallet=PROVIDER)
        carol = await add_user(sessions, wallet=CUSTOMER, referred_by=ivy, subject=CAROL_DID)
        yield Marketplace(sessions=sessions, carol=carol, pat=pat, ivy=ivy)
    finally:
        await engine.dispose()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = await Receiver().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def identity_key() -> ec.EllipticCurvePrivateKey:
    return es256_key()


@pytest.fixture
def settings(
    database_url: str,
    fresh_chain: AnvilNode,
    chain: tuple[ChainClient, Deployment],
    identity_key: ec.EllipticCurvePrivateKey,
) -> Settings:
    _, deployment = chain
    accounts = fresh_chain.accounts
    return Settings(
        _env_file=None,
        database_url=database_url,
        temporal_address="unused:0",  # the clients are passed in
        task_queue=f"seed-{uuid.uuid4().hex[:10]}",
        rpc_urls=[fresh_chain.http_url],
        chain_id=31337,
        escrow_address=deployment.escrow,
        usdc_address=deployment.usdc,
        deployment_file="/nonexistent/deployment.json",
        signer_private_key=SecretStr(accounts[5].private_key),
        operator_private_key=SecretStr(accounts[6].private_key),
        confirmations=1,
        push_grace_seconds=0,
        poll_interval_seconds=1,
        monitoring_window_seconds=120,
        # The identity provider: Privy's shape (ES256, iss privy.io, aud the app id).
        jwt_algorithm="ES256",
        jwt_audience=APP_ID,
        jwt_issuer=ISSUER,
        webhook_poll_interval_seconds=0.2,
        webhook_retry_initial_seconds=0.2,
        worker_metrics_port=0,
        world_check_interval_seconds=0,
    )


@pytest.fixture
async def stack(
    settings: Settings,
    temporal_client: Client,
    marketplace: Marketplace,
    identity_key: ec.EllipticCurvePrivateKey,
) -> AsyncIterator[httpx.AsyncClient]:
    """The worker (every activity, the webhook relay) and the API, on the JWKS."""
    relay_id = f"webhook-relay-{uuid.uuid4().hex[:10]}"
    with serve_jwks(identity_key) as jwks_url:
        api_settings = settings.model_copy(update={"jwks_url": jwks_url})
        app = create_app(
            api_settings, registry=CollectorRegistry(), temporal_client=temporal_client
        )
        async with (
            activity_dependencies(settings, registry=CollectorRegistry()) as activities,
            build_worker(temporal_client, settings, activities),
            serve(app) as api,
        ):
            await ensure_webhook_relay(temporal_client, settings, workflow_id=relay_id)
            try:
                yield api
            finally:
                await temporal_client.get_workflow_handle(relay_id).terminate("test over")


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll `check` (the test's guard bounds the wait): the state lives in other processes."""
    while not await check():  # noqa: ASYNC110 - no event to wait on across processes
        await asyncio.sleep(0.2)


async def test_the_seed_marketplace_end_to_end(
    stack: httpx.AsyncClient,
    marketplace: Marketplace,
    chain: tuple[ChainClient, Deployment],
    fresh_chain: AnvilNode,
    receiver: Receiver,
    settings: Settings,
    identity_key: ec.EllipticCurvePrivateKey,
) -> None:
    api = stack
    client, deployment = chain
    async with marketplace.sessions.begin() as session:  # the operator adds the endpoint
        box = SecretBox(settings.webhook_encryption_key.get_secret_value())
        _, secret = await create_endpoint(session, box, url=receiver.url)
    carol = bearer(privy_token(identity_key, CAROL_DID))  # only sub, iss, aud, exp
    wallet = TransactionSender(
        client, TransactionKey(fresh_chain.accounts[1].private_key), chain_id=31337
    )

    async def send(to: str, data: bytes) -> str:
        sent, receipt = await wallet.send_and_wait(to=to, data=data)
        assert receipt.succeeded, sent.tx_hash
        return sent.tx_hash

    async def status_is(booking: uuid.UUID, status: str) -> bool:
        row = (await api.get(f"/bookings/{booking}", headers=carol)).json()
        assert row.get("status") != "FAILED", row
        return bool(row.get("status") == status)

    async with asyncio.timeout(GUARD_SECONDS):
        booking = await marketplace.insert_booking(datetime.now(UTC) + timedelta(days=2))

        # The seed frontend's call: the booking id alone; terms from the row and the directory.
        signed = await api.post(f"/api/bookings/{booking}/authorize-payment", headers=carol)
        assert signed.status_code == 200, signed.text
        auth = BookingAuthorization.from_message(signed.json()["authorization"])
        assert (auth.customer, auth.provider, auth.amount) == (CUSTOMER, PROVIDER, 40 * 10**6)
        assert (auth.platform_fee_rate, auth.inviter_fee_rate) == (500, 500)  # carol was invited

        usdc = ContractAbi(load_artifact("MockUSDC").abi)
        await send(deployment.usdc, usdc.encode_call("approve", deployment.escrow, auth.amount))
        signature = bytes.fromhex(signed.json()["signature"][2:])
        paid = await send(
            deployment.escrow,
            escrow_abi().encode_call("createAndPayBooking", auth.as_abi_tuple(), signature),
        )
        report = {"tx_hash": paid, "kind": "payment"}
        reported = await api.post(f"/bookings/{booking}/transactions", json=report, headers=carol)
        assert reported.status_code == 202, reported.text
        fresh_chain.rpc("anvil_mine", "0x2")  # past the confirmation depth
        await eventually(lambda: status_is(booking, "PAID"))

        completed = await send(
            deployment.escrow,
            escrow_abi().encode_call("completeService", bytes.fromhex(auth.booking_id[2:])),
        )
        report = {"tx_hash": completed, "kind": "completion"}
        reported = await api.post(f"/bookings/{booking}/transactions", json=report, headers=carol)
        assert reported.status_code == 202, reported.text
        fresh_chain.rpc("anvil_mine", "0x2")
        await eventually(lambda: status_is(booking, "COMPLETED"))

        async def announced() -> bool:
            types = [e["type"] for e in receiver.delivered()]
            return "booking.completed" in types

        await eventually(announced)

    verify = readme_verify()
    delivered = [r for r in receiver.received if 200 <= r.answered < 300]
    for request in delivered:
        assert verify(secret, request.headers["BookMe-Signature"], request.body)
    types = [r.event["type"] for r in delivered if r.event["booking_id"] == str(booking)]
    assert [t for t in types if t in ("booking.paid", "booking.completed")] == [
        "booking.paid",
        "booking.completed",
    ]

    # The marketplace's counters, in whole USDC: 40 less 5 % platform and 5 % inviter.
    earnings, services = await marketplace.one(
        "SELECT total_earnings, completed_services FROM users WHERE id = :id", id=marketplace.pat
    )
    assert (earnings, services) == (Decimal("36.000000"), 1)
    (completed_at,) = await marketplace.one(
        "SELECT completed_at FROM bookings WHERE id = :id", id=booking
    )
    assert completed_at is not None
