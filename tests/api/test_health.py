"""GET /health against real dependencies: 200 when all are fine, 503 naming what is not;
and outages of Postgres or Temporal turn requests into 503s, never 500s."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from bookme.embedded.anvil import AnvilNode
from bookme.embedded.process import free_port
from chain.client import ChainClient
from chain.deploy import Deployment, deploy_local
from chain.escrow import escrow_abi
from chain.keys import TransactionKey
from chain.sender import TransactionSender
from db.models import ChainCursor
from tests.api.conftest import ApiFactory
from tests.api.helpers import OPERATOR_AUTH, SERVICE_AUTH, booking_body, serve

pytestmark = pytest.mark.integration


@pytest.fixture
async def chain(fresh_chain: AnvilNode) -> AsyncIterator[ChainClient]:
    async with ChainClient([fresh_chain.http_url], expected_chain_id=31337) as client:
        yield client


@pytest.fixture
async def deployment(fresh_chain: AnvilNode, chain: ChainClient) -> Deployment:
    deployer, signer, operator, treasury = fresh_chain.accounts[:4]
    return await deploy_local(
        chain,
        deployer.private_key,
        signer_address=signer.address,
        operator_address=operator.address,
        treasury_address=treasury.address,
    )


async def checkpoint(sessions: async_sessionmaker[AsyncSession], escrow: str, block: int) -> None:
    async with sessions.begin() as session:
        await session.execute(
            insert(ChainCursor)
            .values(
                chain_id=31337,
                contract_address=escrow,
                last_block_number=block,
                last_block_hash="0x" + "00" * 32,
            )
            .on_conflict_do_update(
                index_elements=["chain_id", "contract_address"],
                set_={"last_block_number": block},
            )
        )


async def test_healthy_when_every_dependency_is(
    factory: ApiFactory,
    fresh_chain: AnvilNode,
    chain: ChainClient,
    deployment: Deployment,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    head = await chain.block_number()
    await checkpoint(sessions, deployment.escrow, head)
    app = factory.app(
        settings={"rpc_urls": [fresh_chain.http_url], "escrow_address": deployment.escrow}
    )
    async with serve(app) as client:
        response = await client.get("/health")
        assert response.status_code == 200, response.text
        checks = response.json()["checks"]
        assert {name for name, check in checks.items() if check["ok"]} == {
            "postgres",
            "temporal",
            "chain",
            "contract",
            "listener",
        }
        assert checks["chain"]["data"]["head_block"] == head
        assert checks["chain"]["data"]["provider"]
        assert checks["listener"]["data"]["lag_blocks"] == 0

        # The listener falls far behind: 503, and the report says by how much.
        await checkpoint(sessions, deployment.escrow, 0)
        fresh_chain.rpc("anvil_mine", hex(40))
        lagging = await client.get("/health")
        assert lagging.status_code == 503
        assert lagging.headers["Retry-After"]
        assert lagging.json()["checks"]["listener"]["ok"] is False
        assert lagging.json()["checks"]["listener"]["data"]["lag_blocks"] >= 40

        # The operator pauses the escrow (the owner is a timelock; braking is immediate for the
        # operator): new payments are refused, so the API is not healthy.
        await checkpoint(sessions, deployment.escrow, await chain.block_number())
        operator_key = next(
            a.private_key for a in fresh_chain.accounts if a.address == deployment.operator
        )
        owner = TransactionSender(chain, TransactionKey(operator_key), chain_id=31337)
        _, receipt = await owner.send_and_wait(
            to=deployment.escrow, data=escrow_abi().encode_call("pause")
        )
        assert receipt.succeeded
        await checkpoint(sessions, deployment.escrow, await chain.block_number())
        paused = await client.get("/health")
        assert paused.status_code == 503
        assert paused.json()["checks"]["contract"]["data"]["paused"] is True
        assert paused.json()["checks"]["listener"]["ok"] is True


async def test_missing_chain_configuration_is_503(factory: ApiFactory) -> None:
    async with serve(factory.app()) as client:
        response = await client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["postgres"]["ok"] is True
    assert body["checks"]["temporal"]["ok"] is True
    assert body["checks"]["chain"]["ok"] is False
    assert "no RPC provider" in body["checks"]["chain"]["detail"]


async def test_postgres_down_gives_503_everywhere(factory: ApiFactory) -> None:
    dead = f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/nothing"
    async with serve(factory.app(settings={"database_url": dead})) as client:
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.json()["checks"]["postgres"]["ok"] is False
        listing = await client.get("/bookings", headers=OPERATOR_AUTH)
        assert listing.status_code == 503
        # asyncpg reports a refused connection as a plain OSError: a generic outage code.
        assert listing.json()["code"] == "dependency_unavailable"
        assert listing.headers["Retry-After"]
        created = await client.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
        assert created.status_code == 503


async def test_temporal_down_gives_503_not_500(factory: ApiFactory) -> None:
    unreachable = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True)
    async with serve(factory.app(temporal_client=unreachable)) as client:
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.json()["checks"]["temporal"]["ok"] is False
        assert health.json()["checks"]["postgres"]["ok"] is True
        created = await client.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
        assert created.status_code == 503
        assert created.json()["code"] == "temporal_unavailable"
        assert created.headers["Retry-After"]


async def test_workflow_not_recording_in_time_is_503_with_a_retry_hint(
    factory: ApiFactory, temporal_client: Client
) -> None:
    # No worker polls this task queue: the workflow starts but never records the booking.
    from api.deps import ApiOptions

    app = factory.app(options=ApiOptions(create_wait_seconds=0.5))
    async with serve(app) as client:
        response = await client.post(
            "/bookings", json=booking_body(), headers={**SERVICE_AUTH, "Idempotency-Key": "k1"}
        )
        assert response.status_code == 503
        assert response.json()["code"] == "booking_pending"
        assert "Idempotency-Key" in response.json()["message"]
        # The workflow exists but has recorded nothing: its memo still tells a reused key.
        reused = await client.post(
            "/bookings",
            json=booking_body(amount="99"),
            headers={**SERVICE_AUTH, "Idempotency-Key": "k1"},
        )
        assert reused.status_code == 409
        assert reused.json()["code"] == "idempotency_conflict"


async def test_health_needs_no_token(factory: ApiFactory) -> None:
    async with serve(factory.app()) as client:
        assert (await client.get("/health")).status_code in (200, 503)
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/nope")).json()["code"] == "not_found"
