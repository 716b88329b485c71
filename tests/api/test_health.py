"""/health, /health/ready and /health/live against real dependencies.

Ready (Postgres and Temporal) routes traffic; /health is ok, degraded (200: a paused contract, a
lagging listener, low operator gas, no chain configured) or unavailable (503: Postgres or Temporal
down). Checks answer with short codes, never exception text. Outages of Postgres or Temporal turn
requests into 503s, never 500s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.health import HealthChecker
from api.health_status import HealthComponent, Tier, failed, http_status, passed
from api.schemas import CheckResult
from bookme.embedded.anvil import AnvilNode
from bookme.embedded.process import free_port
from chain.client import ChainClient
from chain.deploy import Deployment, deploy_local
from chain.escrow import escrow_abi
from chain.keys import TransactionKey
from chain.sender import TransactionSender
from db.models import ChainCursor
from tests.api.conftest import ApiFactory
from tests.api.helpers import CUSTOMER_AUTH, OPERATOR_AUTH, SERVICE_AUTH, booking_body, serve

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
        assert response.json()["status"] == "ok"
        checks = response.json()["checks"]
        assert {name for name, check in checks.items() if check["ok"]} == {
            "postgres",
            "temporal",
            "chain",
            "contract",
            "listener",
            "operator_gas",
            "world",
        }
        assert {name for name, check in checks.items() if check["critical"]} == {
            "postgres",
            "temporal",
        }
        assert checks["chain"]["data"]["head_block"] == head
        assert checks["chain"]["data"]["provider"]
        assert checks["listener"]["data"]["lag_blocks"] == 0
        assert checks["operator_gas"]["data"]["address"] == deployment.operator

        # The listener falls far behind: degraded (200, no Retry-After: replicas stay in the
        # load balancer; every replica would see the same lag), and the report says by how much.
        await checkpoint(sessions, deployment.escrow, 0)
        fresh_chain.rpc("anvil_mine", hex(40))
        lagging = await client.get("/health")
        assert lagging.status_code == 200
        assert lagging.json()["status"] == "degraded"
        assert "Retry-After" not in lagging.headers
        assert lagging.json()["checks"]["listener"]["ok"] is False
        assert lagging.json()["checks"]["listener"]["code"] == "lagging"
        assert lagging.json()["checks"]["listener"]["data"]["lag_blocks"] >= 40
        assert (await client.get("/health/ready")).status_code == 200

        # The operator pauses the escrow (the owner is a timelock; braking is immediate for the
        # operator): new payments are refused, the API still serves reads and cancellations.
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
        assert paused.status_code == 200
        assert paused.json()["status"] == "degraded"
        assert paused.json()["checks"]["contract"]["code"] == "paused"
        assert paused.json()["checks"]["contract"]["data"]["paused"] is True
        assert paused.json()["checks"]["listener"]["ok"] is True


async def test_low_operator_gas_is_degraded(
    factory: ApiFactory, fresh_chain: AnvilNode, chain: ChainClient, deployment: Deployment
) -> None:
    balance = await chain.get_balance(deployment.operator)
    app = factory.app(
        settings={
            "rpc_urls": [fresh_chain.http_url],
            "escrow_address": deployment.escrow,
            "operator_min_balance_wei": balance + 1,
        }
    )
    async with serve(app) as client:
        response = await client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    gas = response.json()["checks"]["operator_gas"]
    assert (gas["ok"], gas["code"], gas["critical"]) == (False, "low_balance", False)
    assert gas["data"]["balance_wei"] == str(balance)
    assert gas["data"]["min_balance_wei"] == str(balance + 1)


async def test_a_chain_that_differs_from_the_settings_is_degraded_and_named(
    factory: ApiFactory, fresh_chain: AnvilNode, deployment: Deployment
) -> None:
    app = factory.app(
        settings={
            "rpc_urls": [fresh_chain.http_url],
            "escrow_address": deployment.escrow,
            "platform_fee_bps": 800,
        }
    )
    async with serve(app) as client:
        response = await client.get("/health")
        metrics = await client.get("/metrics")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    world = response.json()["checks"]["world"]
    assert (world["ok"], world["code"], world["critical"]) == (False, "mismatch", False)
    assert world["detail"] == (
        "chain check failed: on-chain platform_fee_bps is 1000, settings say 800"
    )
    assert world["data"]["failing"] == "fee_policy"
    assert 'bookme_world_check_ok{check="fee_policy"} 0.0' in metrics.text
    assert 'bookme_world_check_ok{check="usdc"} 1.0' in metrics.text


async def test_missing_chain_configuration_is_degraded_not_503(factory: ApiFactory) -> None:
    async with serve(factory.app()) as client:
        response = await client.get("/health")
        ready = await client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["postgres"]["ok"] is True
    assert body["checks"]["temporal"]["ok"] is True
    assert body["checks"]["chain"]["ok"] is False
    assert body["checks"]["chain"]["code"] == "not_configured"
    assert "no RPC provider" in body["checks"]["chain"]["detail"]
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "checks": {
            name: {"ok": True, "code": "ok", "detail": detail, "critical": True, "data": {}}
            for name, detail in (("postgres", "reachable"), ("temporal", "serving"))
        },
    }


async def test_postgres_down_gives_503_everywhere(factory: ApiFactory) -> None:
    port = free_port()
    dead = f"postgresql+asyncpg://nobody@127.0.0.1:{port}/nothing"
    async with serve(factory.app(settings={"database_url": dead})) as client:
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.headers["Retry-After"]
        assert health.json()["status"] == "unavailable"
        postgres = health.json()["checks"]["postgres"]
        assert (postgres["ok"], postgres["code"], postgres["critical"]) == (False, "error", True)
        # A code, not the driver's message (which names the host and port it tried).
        assert str(port) not in health.text
        assert "refused" not in health.text.lower()
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["postgres"]["ok"] is False
        # Liveness depends on nothing: the process is up, do not restart it for Postgres.
        live = await client.get("/health/live")
        assert (live.status_code, live.json()) == (200, {"status": "ok"})
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
        assert (await client.get("/health/ready")).status_code == 503
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
        assert (await client.get("/health")).json()["checks"]
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/nope")).json()["code"] == "not_found"


async def test_restricted_details_need_an_operator_or_an_allowed_network(
    factory: ApiFactory,
) -> None:
    restricted = {"observability_restricted": True, "observability_networks": ["10.0.0.0/8"]}
    async with serve(factory.app(settings=restricted)) as client:
        # httpx's ASGI transport is 127.0.0.1: not in the allowed network.
        anonymous = await client.get("/health")
        assert anonymous.status_code == 200
        assert anonymous.json() == {"status": "degraded", "checks": {}}
        metrics = await client.get("/metrics")
        assert metrics.status_code == 403
        assert metrics.json()["code"] == "observability_restricted"
        customer = await client.get("/metrics", headers=CUSTOMER_AUTH)
        assert customer.status_code == 403
        assert (await client.get("/health/ready")).status_code == 200
        operator = await client.get("/health", headers=OPERATOR_AUTH)
        assert operator.json()["checks"]["postgres"]["ok"] is True
        assert (await client.get("/metrics", headers=OPERATOR_AUTH)).status_code == 200
    allowed = {**restricted, "observability_networks": ["10.0.0.0/8", "127.0.0.1"]}
    async with serve(factory.app(settings=allowed)) as client:
        assert (await client.get("/health")).json()["checks"]["postgres"]["ok"] is True
        assert (await client.get("/metrics")).status_code == 200


@dataclass(frozen=True)
class Plugged:
    """A component as the world checks plug one in: a name, a tier, a result."""

    name: str
    tier: Tier
    ok: bool

    async def check(self) -> CheckResult:
        return passed("matches") if self.ok else failed("mismatch", "chain id differs")


@dataclass(frozen=True)
class Exploding:
    name: str = "exploding"
    tier: Tier = Tier.DEGRADING

    async def check(self) -> CheckResult:
        raise RuntimeError("secret-ish text from deep inside")


async def test_plugged_components_take_their_tier(
    sessions: async_sessionmaker[AsyncSession], temporal_client: Client
) -> None:
    def checker(*components: HealthComponent) -> HealthChecker:
        return HealthChecker(
            sessions=sessions,
            temporal=temporal_client,
            chain=None,
            escrow=None,
            chain_id=31337,
            head_stale_after_seconds=30,
            confirmations=0,
            max_listener_lag_blocks=0,
            components=components,
        )

    fine = await checker(Plugged("world", Tier.CRITICAL, ok=True)).report()
    assert fine.checks["world"].ok
    assert fine.checks["world"].critical
    assert fine.status == "degraded"  # no chain configured here: degraded, never unavailable
    degraded = await checker(Plugged("world", Tier.DEGRADING, ok=False), Exploding()).report()
    assert degraded.status == "degraded"
    assert degraded.checks["world"].code == "mismatch"
    assert degraded.checks["exploding"].code == "error"
    assert "secret" not in degraded.model_dump_json()
    down = await checker(Plugged("world", Tier.CRITICAL, ok=False)).report()
    assert down.status == "unavailable"
    assert http_status(down.status) == 503
