"""The servers every bench stack runs on: anvil, Postgres and Temporal on free ports under one
scratch directory, migrated, with the escrow deployed; and the environment our apps start with.

`bench.stack.BenchStack` (throughput and latency) and `bench.chaos.stack.ChaosStack` (faults)
add their own processes on top; this is the part they share.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

from bookme.devchain import DevRoles, ensure_deployed
from bookme.embedded.anvil import ANVIL_DEFAULT_ACCOUNTS, AnvilNode
from bookme.embedded.postgres import EmbeddedPostgres
from bookme.embedded.process import free_port
from bookme.embedded.temporal import TemporalDevServer
from bookme.settings import Settings
from chain.client import ChainClient
from chain.deploy import Deployment, fee_policy_from_settings
from db.migrate import upgrade_async

# The API's own limits, out of the way of throughput and fault runs.
UNLIMITED = "100000000"


@dataclass
class LocalServices:
    """anvil, Postgres and Temporal, started by `start_services` and stopped by `stop_services`."""

    workdir: Path
    database: str
    # None: a block per transaction; N: a block every N seconds as well.
    block_time: int | None = None
    # A file keeps Temporal's state across a restart of the server (the chaos run restarts it).
    temporal_db_file: Path | None = None
    # Funded anvil accounts: the roles, the customer wallets and the catch-up emitter's.
    accounts: int = ANVIL_DEFAULT_ACCOUNTS
    node: AnvilNode = field(init=False)
    postgres: EmbeddedPostgres = field(init=False)
    temporal_server: TemporalDevServer = field(init=False)
    deployment: Deployment = field(init=False)
    roles: DevRoles = field(init=False)
    database_url: str = field(init=False)

    def __post_init__(self) -> None:
        logs = self.logs
        self.node = AnvilNode(
            port=free_port(),
            log_path=logs / "anvil.log",
            block_time=self.block_time,
            account_count=self.accounts,
        )
        self.postgres = EmbeddedPostgres(
            data_dir=self.workdir / "pg",
            port=free_port(),
            log_path=logs / "postgres.log",
            fast=True,
        )
        self.temporal_server = TemporalDevServer(
            port=free_port(),
            ui_port=None,
            log_path=logs / "temporal.log",
            db_file=self.temporal_db_file,
        )

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    async def start_services(self) -> None:
        """Start the three servers, migrate the database, register the search attributes and
        deploy the escrow with anvil's roles."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o755)  # Postgres may run as an unprivileged account
        await asyncio.to_thread(self.node.start)
        await asyncio.to_thread(self.postgres.start)
        await asyncio.to_thread(self.temporal_server.start)
        os.environ.setdefault("PGSSLMODE", "disable")
        self.postgres.psql(f'CREATE DATABASE "{self.database}"')
        self.database_url = self.postgres.url_for(self.database)
        await upgrade_async(self.database_url)
        await self.temporal_server.wait_serving()  # registers the search attributes
        self.roles = DevRoles.from_accounts(self.node.accounts)
        async with ChainClient([self.node.http_url]) as chain:
            self.deployment, _ = await ensure_deployed(
                chain,
                self.roles,
                self.workdir / "deployment.json",
                fee_policy_from_settings(Settings()),
            )

    def app_env(self, rpc_urls: str) -> dict[str, str]:
        """The environment of one of our processes: the caller's minus its BOOKME_ settings,
        plus these servers, the deployment, anvil's keys and no rate limits."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("BOOKME_")}
        return base | {
            "BOOKME_DATABASE_URL": self.database_url,
            "BOOKME_TEMPORAL_ADDRESS": self.temporal_server.address,
            "BOOKME_TEMPORAL_NAMESPACE": self.temporal_server.namespace,
            "BOOKME_RPC_URLS": rpc_urls,
            "BOOKME_CHAIN_ID": str(self.deployment.chain_id),
            "BOOKME_ESCROW_ADDRESS": self.deployment.escrow,
            "BOOKME_USDC_ADDRESS": self.deployment.usdc,
            "BOOKME_DEPLOYMENT_FILE": str(self.workdir / "deployment.json"),
            # anvil's published keys: a local chain only.
            "BOOKME_SIGNER_PRIVATE_KEY": self.roles.signer.private_key,
            "BOOKME_OPERATOR_PRIVATE_KEY": self.roles.operator.private_key,
            "BOOKME_LOG_LEVEL": "WARNING",
            "BOOKME_RATE_LIMIT_PER_MINUTE": UNLIMITED,
            "BOOKME_SIGNATURE_RATE_LIMIT_PER_MINUTE": UNLIMITED,
            "BOOKME_SIGNATURE_RATE_LIMIT_PER_IP_PER_MINUTE": UNLIMITED,
            # The default metrics ports may be taken by `make dev` or another stack.
            "BOOKME_WORKER_METRICS_PORT": "0",
            "BOOKME_LISTENER_METRICS_PORT": "0",
            "PGSSLMODE": "disable",
        }

    async def stop_services(self, *, keep_data: bool = False) -> None:
        """Stop the servers; `keep_data` leaves Postgres's files for a post-mortem."""
        await asyncio.to_thread(self.temporal_server.stop)
        await asyncio.to_thread(self.postgres.stop if keep_data else self.postgres.destroy)
        await asyncio.to_thread(self.node.stop)
