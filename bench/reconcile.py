"""How long a full reconcile of 1 000 bookings takes: ``python -m bench.reconcile [count]``.

Seeding stays cheap: each booking is a real booking workflow (its row written by its own
``record_booking``) left unpaid, so the run does the full per-booking work (workflow ``status``
query, ``getBooking`` on the contract, row comparison) plus the event gap check, the workflow
scan and the invariants, and finds nothing to repair. Embedded Postgres, Temporal and anvil
on free ports; the worker runs in this process. JSON to bench/results/reconcile.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from temporalio.client import Client

from bookme.devchain import DevRoles, ensure_deployed
from bookme.embedded.anvil import AnvilNode
from bookme.embedded.postgres import EmbeddedPostgres
from bookme.embedded.process import free_port
from bookme.embedded.temporal import TemporalDevServer, register_search_attributes
from bookme.settings import Settings
from chain.client import ChainClient
from chain.deploy import fee_policy_from_settings
from chain.eip712 import chain_booking_id
from db.migrate import upgrade_async
from worker import activity_dependencies, build_worker
from workflows import DATA_CONVERTER, BookingWorkflow, booking_workflow_id
from workflows.reconcile import ReconcileWorkflow
from workflows.reconcile_types import ReconcileInput
from workflows.types import BookingInput

RESULTS = Path(__file__).parent / "results" / "reconcile.json"
DATABASE = "bookme_bench_reconcile"
START_CONCURRENCY = 50


async def _seed(client: Client, settings: Settings, roles: DevRoles, count: int) -> None:
    limit = asyncio.Semaphore(START_CONCURRENCY)
    customer, provider = roles.wallets[0].address, roles.wallets[1].address
    policy = settings.booking_policy()

    async def start() -> None:
        booking_id = str(uuid.uuid4())
        async with limit:
            await client.start_workflow(
                BookingWorkflow.run,
                BookingInput(
                    booking_id=booking_id,
                    chain_booking_id=chain_booking_id(booking_id),
                    customer_wallet=customer,
                    provider_wallet=provider,
                    amount_units=10 * 10**6,
                    scheduled_at=datetime.now(UTC) + timedelta(days=1),
                    service_id="bench",
                    customer_id="bench-customer",
                    provider_id="bench-provider",
                    policy=policy,
                ),
                id=booking_workflow_id(booking_id),
                task_queue=settings.task_queue,
            )

    await asyncio.gather(*(start() for _ in range(count)))


async def _rows(settings: Settings) -> int:
    from sqlalchemy import func, select

    from db.engine import make_engine, make_session_factory
    from db.models import Booking

    engine = make_engine(settings.database_url, pool_size=1)
    try:
        async with make_session_factory(engine)() as session:
            return int(
                (await session.execute(select(func.count()).select_from(Booking))).scalar_one()
            )
    finally:
        await engine.dispose()


async def run(count: int, workdir: Path) -> dict[str, object]:
    logs = workdir / "logs"
    node = AnvilNode(port=free_port(), log_path=logs / "anvil.log")
    postgres = EmbeddedPostgres(
        data_dir=workdir / "pg", port=free_port(), log_path=logs / "pg.log", fast=True
    )
    temporal = TemporalDevServer(port=free_port(), ui_port=None, log_path=logs / "temporal.log")
    workdir.chmod(0o755)  # Postgres may run as an unprivileged account
    try:
        await asyncio.to_thread(node.start)
        await asyncio.to_thread(postgres.start)
        await asyncio.to_thread(temporal.start)
        os.environ.setdefault("PGSSLMODE", "disable")
        postgres.psql(f'CREATE DATABASE "{DATABASE}"')
        database_url = postgres.url_for(DATABASE)
        await upgrade_async(database_url)
        client = await Client.connect(
            temporal.address, namespace=temporal.namespace, data_converter=DATA_CONVERTER
        )
        await register_search_attributes(client, temporal.namespace)
        roles = DevRoles.from_accounts(node.accounts)
        async with ChainClient([node.http_url]) as chain:
            deployment, _ = await ensure_deployed(
                chain, roles, workdir / "deployment.json", fee_policy_from_settings(Settings())
            )
        settings = Settings(
            _env_file=None,
            database_url=database_url,
            temporal_address=temporal.address,
            rpc_urls=[node.http_url],
            chain_id=deployment.chain_id,
            escrow_address=deployment.escrow,
            signer_private_key=SecretStr(roles.signer.private_key),
            operator_private_key=SecretStr(roles.operator.private_key),
            confirmations=0,
            task_queue="bookings-bench-reconcile",
            worker_metrics_port=0,
            log_level="WARNING",
        )
        async with (
            activity_dependencies(settings, client, CollectorRegistry()) as activities,
            build_worker(client, settings, activities),
        ):
            seed_started = time.perf_counter()
            await _seed(client, settings, roles, count)
            for _ in range(1200):  # every row recorded by its workflow, within 10 minutes
                if await _rows(settings) >= count:
                    break
                await asyncio.sleep(0.5)
            seed_seconds = time.perf_counter() - seed_started
            started = time.perf_counter()
            report = await client.execute_workflow(
                ReconcileWorkflow.run,
                ReconcileInput(full=True, reason="bench"),
                id=f"reconcile-bench-{uuid.uuid4()}",
                task_queue=settings.task_queue,
            )
            seconds = time.perf_counter() - started
    finally:
        await asyncio.to_thread(temporal.stop)
        await asyncio.to_thread(postgres.destroy)
        await asyncio.to_thread(node.stop)
    return {
        "bookings": count,
        "scanned": report.scanned,
        "reconcile_seconds": round(seconds, 2),
        "bookings_per_second": round(report.scanned / seconds, 1) if seconds else None,
        "seed_seconds": round(seed_seconds, 2),
        "divergences": sum(report.counts.values()),
        "invariants": report.invariants,
        "page_size": ReconcileInput().page_size,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
    }


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory(prefix="bookme-bench-reconcile-") as scratch:
        result = asyncio.run(run(count, Path(scratch)))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(  # noqa: T201 - a bench prints its figure
        f"reconcile of {result['scanned']} bookings: {result['reconcile_seconds']} s"
        f" ({result['bookings_per_second']} bookings/s); divergences {result['divergences']};"
        f" invariants {result['invariants']} -> {RESULTS}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
