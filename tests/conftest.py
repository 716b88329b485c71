"""Real services for the whole suite, started once per run on free loopback ports.

A service whose URL is set in the environment (BOOKME_DATABASE_URL, BOOKME_TEMPORAL_ADDRESS,
BOOKME_RPC_URLS) is used as is instead; nothing is ever skipped for a missing service.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bookme.embedded.anvil import AnvilNode
from bookme.embedded.postgres import EmbeddedPostgres
from bookme.embedded.process import free_port
from bookme.embedded.temporal import TemporalDevServer, register_search_attributes, venv_binary


@dataclass(frozen=True)
class PostgresService:
    """Admin URL of the test Postgres plus a way to make throwaway databases."""

    url: str
    server: EmbeddedPostgres | None

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        if self.server is None:
            raise RuntimeError("per-test databases need the embedded server")
        self.server.psql(f'CREATE DATABASE "{name}"')
        return self.server.url_for(name)


@dataclass(frozen=True)
class TemporalService:
    address: str
    namespace: str
    ui_url: str | None  # the Web UI; for an external server, BOOKME_TEST_TEMPORAL_UI_URL


@pytest.fixture(scope="session")
def service_dir() -> Iterator[Path]:
    # Not under pytest's basetemp: every pytest start chmods /tmp/pytest-of-<user> to 0700,
    # which locks the unprivileged Postgres account out of a data dir placed there.
    path = Path(tempfile.mkdtemp(prefix="bookme-services-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(service_dir: Path) -> Iterator[PostgresService]:
    external = os.environ.get("BOOKME_DATABASE_URL")
    if external:
        yield PostgresService(url=external, server=None)
        return
    server = EmbeddedPostgres(
        data_dir=service_dir / "pgdata",
        port=free_port(),
        log_path=service_dir / "postgres.log",
        fast=True,
    )
    server.start()
    # The embedded server has no TLS; without this asyncpg builds an SSL context for every
    # connection first (and doing so from migration threads crashed OpenSSL here).
    os.environ.setdefault("PGSSLMODE", "disable")
    try:
        yield PostgresService(url=server.url, server=server)
    finally:
        server.destroy()


@pytest.fixture
def database_url(postgres: PostgresService) -> str:
    """A brand-new empty database for one test."""
    return postgres.create_database()


@pytest.fixture(scope="session")
def anvil(service_dir: Path) -> Iterator[AnvilNode]:
    node = AnvilNode(port=free_port(), log_path=service_dir / "anvil.log")
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def fresh_chain(anvil: AnvilNode) -> Iterator[AnvilNode]:
    """The session's anvil, rolled back to this point after the test.

    A snapshot restores state but not everything a test may have touched: pending
    transactions stay in the pool (and would be mined into the next test's blocks), automine
    may be off, and the clock may trail the wall clock. Each of those is reset here.
    """
    _align_clock(anvil)
    snapshot = anvil.rpc("evm_snapshot")
    try:
        yield anvil
    finally:
        anvil.rpc("evm_revert", snapshot)
        anvil.rpc("anvil_dropAllTransactions")
        anvil.rpc("evm_setAutomine", True)


def _align_clock(anvil: AnvilNode) -> None:
    """Never start a test with chain time behind wall time (timers compare the two)."""
    latest = anvil.rpc("eth_getBlockByNumber", "latest", False)
    assert isinstance(latest, dict)
    now = int(time.time())
    if int(latest["timestamp"], 16) < now:
        anvil.rpc("evm_setNextBlockTimestamp", now)
        anvil.rpc("evm_mine")


@pytest.fixture(scope="session")
def temporal(service_dir: Path) -> Iterator[TemporalService]:
    external = os.environ.get("BOOKME_TEMPORAL_ADDRESS")
    if external:
        ui_url = os.environ.get("BOOKME_TEST_TEMPORAL_UI_URL")
        yield TemporalService(address=external, namespace="default", ui_url=ui_url)
        return
    # With its Web UI: the browser test (tests/ui/) looks at the operator's view of it.
    server = TemporalDevServer(
        port=free_port(), ui_port=free_port(), log_path=service_dir / "temporal.log"
    )
    server.start()
    try:
        yield TemporalService(
            address=server.address, namespace=server.namespace, ui_url=server.ui_url
        )
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def temporal_client(temporal: TemporalService) -> Client:
    client = await Client.connect(temporal.address, namespace=temporal.namespace)
    await register_search_attributes(client, temporal.namespace)
    return client


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(venv_binary("temporal-test-server"))
    )
    try:
        await register_search_attributes(env.client, env.client.namespace)
        yield env
    finally:
        await env.shutdown()
