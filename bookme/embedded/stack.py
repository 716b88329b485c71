"""Start the services `make dev` needs, skipping each one whose URL points at a real service."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

from bookme.embedded.anvil import AnvilNode, DevAccount
from bookme.embedded.postgres import EmbeddedPostgres
from bookme.embedded.temporal import TemporalDevServer, register_search_attributes
from bookme.settings import Settings

DEV_DATABASE = "bookme"


@dataclass(frozen=True, kw_only=True)
class ServiceEndpoints:
    """Where each part runs, and whether we started it or it is external."""

    database_url: str
    temporal_address: str
    temporal_ui_url: str | None
    rpc_urls: tuple[str, ...]
    embedded: dict[str, bool]
    dev_accounts: tuple[DevAccount, ...] = ()
    logs_dir: Path = Path(".dev/logs")


@dataclass
class DevStack:
    """The embedded Postgres / Temporal / anvil of `make dev`, with state kept under data_dir."""

    settings: Settings
    _postgres: EmbeddedPostgres | None = field(default=None, init=False)
    _temporal: TemporalDevServer | None = field(default=None, init=False)
    _anvil: AnvilNode | None = field(default=None, init=False)

    @property
    def logs_dir(self) -> Path:
        return self.settings.data_dir / "logs"

    def start(self) -> ServiceEndpoints:
        s = self.settings
        data = s.data_dir.resolve()
        logs = data / "logs"
        try:
            database_url = s.database_url or self._start_postgres(data, logs)
            temporal_address, ui_url = (
                (s.temporal_address, None)
                if s.temporal_address
                else self._start_temporal(data, logs)
            )
            rpc_urls = tuple(s.rpc_urls) or self._start_anvil(data, logs)
        except BaseException:
            self.stop()
            raise
        asyncio.run(self._ensure_search_attributes(temporal_address))
        return ServiceEndpoints(
            database_url=database_url,
            temporal_address=temporal_address,
            temporal_ui_url=ui_url,
            rpc_urls=rpc_urls,
            embedded={
                "postgres": self._postgres is not None,
                "temporal": self._temporal is not None,
                "anvil": self._anvil is not None,
            },
            dev_accounts=self._anvil.accounts if self._anvil else (),
            logs_dir=logs,
        )

    def _start_postgres(self, data: Path, logs: Path) -> str:
        server = EmbeddedPostgres(
            data_dir=data / "postgres",
            port=self.settings.dev_postgres_port,
            log_path=logs / "postgres.log",
        )
        server.start()
        self._postgres = server
        # No TLS on the embedded server: spare asyncpg (here and in the apps we start) the
        # SSL attempt it makes on every connection by default.
        os.environ.setdefault("PGSSLMODE", "disable")
        query = f"SELECT 1 FROM pg_database WHERE datname = '{DEV_DATABASE}'"  # noqa: S608 - a constant
        exists = server.psql(query)
        if not exists.strip():
            server.psql(f'CREATE DATABASE "{DEV_DATABASE}"')
        return server.url_for(DEV_DATABASE)

    def _start_temporal(self, data: Path, logs: Path) -> tuple[str, str | None]:
        server = TemporalDevServer(
            port=self.settings.dev_temporal_port,
            ui_port=self.settings.dev_temporal_ui_port,
            log_path=logs / "temporal.log",
            db_file=data / "temporal.sqlite",
            namespace=self.settings.temporal_namespace,
        )
        server.start()
        self._temporal = server
        return server.address, server.ui_url

    def _start_anvil(self, data: Path, logs: Path) -> tuple[str, ...]:
        node = AnvilNode(
            port=self.settings.dev_anvil_port,
            log_path=logs / "anvil.log",
            chain_id=self.settings.chain_id,
            # Base makes a block every 2 s; confirmations need blocks to keep coming.
            block_time=2,
            state_file=data / "anvil-state.json",
        )
        node.start()
        self._anvil = node
        return (node.ws_url, node.http_url)

    async def _ensure_search_attributes(self, address: str) -> None:
        from temporalio.client import Client

        client = await Client.connect(address, namespace=self.settings.temporal_namespace)
        await register_search_attributes(client, self.settings.temporal_namespace)

    def stop(self) -> None:
        """Stop what we started, newest first."""
        for service in (self._anvil, self._temporal, self._postgres):
            if service is not None:
                service.stop()
