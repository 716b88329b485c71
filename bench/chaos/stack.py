"""The chaos run's own stack: anvil, Postgres, Temporal (SQLite, so it survives a restart), the
fault proxy in front of anvil for the listeners, and our apps (worker, two listeners, API) under
a supervisor that restarts whatever exits, killed by us or not."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import structlog
from sqlalchemy import text

from bench.chaos.config import ChaosTimers
from bench.chaos.rpc_proxy import FaultProxy
from bookme.devchain import DevRoles, ensure_deployed
from bookme.embedded.anvil import AnvilNode
from bookme.embedded.apps import REPO_ROOT
from bookme.embedded.postgres import EmbeddedPostgres
from bookme.embedded.process import ManagedProcess, free_port, port_open
from bookme.embedded.temporal import TemporalDevServer, register_search_attributes
from bookme.settings import Settings
from chain.client import ChainClient
from chain.deploy import Deployment, fee_policy_from_settings
from db.engine import make_engine
from db.migrate import upgrade_async
from listener.lock import lock_key

log = structlog.get_logger(__name__)

DATABASE = "bookme_chaos"
UNLIMITED = "100000000"
LISTENERS = ("listener-a", "listener-b")
APPS = ("worker", *LISTENERS, "api")
SUPERVISE_SECONDS = 0.5


@dataclass(frozen=True, kw_only=True)
class Exit:
    """An app that exited while the harness had not stopped it."""

    app: str
    code: int | None
    at: float


@dataclass
class ChaosStack:
    workdir: Path
    timers: ChaosTimers
    node: AnvilNode = field(init=False)
    postgres: EmbeddedPostgres = field(init=False)
    temporal: TemporalDevServer = field(init=False)
    proxy: FaultProxy = field(init=False)
    deployment: Deployment = field(init=False)
    roles: DevRoles = field(init=False)
    database_url: str = field(init=False)
    api_port: int = field(default_factory=free_port)
    unplanned_exits: list[Exit] = field(default_factory=list)
    restarts: dict[str, int] = field(default_factory=dict)
    _apps: dict[str, ManagedProcess] = field(default_factory=dict)
    _held_down: set[str] = field(default_factory=set)
    _supervisor: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        logs = self.logs
        # A block a second: confirmations keep coming when the workload goes quiet.
        self.node = AnvilNode(port=free_port(), log_path=logs / "anvil.log", block_time=1)
        self.postgres = EmbeddedPostgres(
            data_dir=self.workdir / "pg",
            port=free_port(),
            log_path=logs / "postgres.log",
            fast=True,
        )
        self.temporal = TemporalDevServer(
            port=free_port(),
            ui_port=None,
            log_path=logs / "temporal.log",
            db_file=self.workdir / "temporal.sqlite",
        )

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def rpc_url(self) -> str:
        return self.node.http_url

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o755)  # Postgres may run as an unprivileged account
        await asyncio.to_thread(self.node.start)
        await asyncio.to_thread(self.postgres.start)
        await asyncio.to_thread(self.temporal.start)
        os.environ.setdefault("PGSSLMODE", "disable")
        self.postgres.psql(f'CREATE DATABASE "{DATABASE}"')
        self.database_url = self.postgres.url_for(DATABASE)
        await upgrade_async(self.database_url)
        client = await self.temporal.wait_serving()
        await register_search_attributes(client, self.temporal.namespace)
        self.roles = DevRoles.from_accounts(self.node.accounts)
        async with ChainClient([self.node.http_url]) as chain:
            self.deployment, _ = await ensure_deployed(
                chain,
                self.roles,
                self.workdir / "deployment.json",
                fee_policy_from_settings(Settings()),
            )
        self.proxy = FaultProxy(self.node.http_url, self.node.ws_url)
        await self.proxy.start()
        for name in APPS:
            self._spawn(name)
        await self.wait_api()
        self._supervisor = asyncio.create_task(self._supervise())

    # --- apps ---

    def _env(self, name: str) -> dict[str, str]:
        rpc = (
            f"{self.proxy.ws_url},{self.proxy.http_url}"
            if name in LISTENERS
            else self.node.http_url
        )
        base = {k: v for k, v in os.environ.items() if not k.startswith("BOOKME_")}
        return base | {
            "BOOKME_DATABASE_URL": self.database_url,
            "BOOKME_TEMPORAL_ADDRESS": self.temporal.address,
            "BOOKME_TEMPORAL_NAMESPACE": self.temporal.namespace,
            "BOOKME_RPC_URLS": rpc,
            "BOOKME_CHAIN_ID": str(self.deployment.chain_id),
            "BOOKME_ESCROW_ADDRESS": self.deployment.escrow,
            "BOOKME_USDC_ADDRESS": self.deployment.usdc,
            "BOOKME_DEPLOYMENT_FILE": str(self.workdir / "deployment.json"),
            # anvil's published keys: a local chain only.
            "BOOKME_SIGNER_PRIVATE_KEY": self.roles.signer.private_key,
            "BOOKME_OPERATOR_PRIVATE_KEY": self.roles.operator.private_key,
            "BOOKME_LOG_LEVEL": "WARNING",
            # As in production: the console renderer draws each traceback with rich (locals
            # and all) on the event loop, seconds of CPU per error, and an outage makes many.
            "BOOKME_LOG_JSON": "true",
            "BOOKME_RATE_LIMIT_PER_MINUTE": UNLIMITED,
            "BOOKME_SIGNATURE_RATE_LIMIT_PER_MINUTE": UNLIMITED,
            "BOOKME_HEAD_STALE_AFTER_SECONDS": "10",
            "BOOKME_API_HOST": "127.0.0.1",
            "BOOKME_API_PORT": str(self.api_port),
            "BOOKME_WORKER_METRICS_PORT": "0",  # the default port may be taken by `make dev`
            "BOOKME_LISTENER_METRICS_PORT": "0",
            "PGSSLMODE": "disable",
            **self.timers.env(),
        }

    def _argv(self, name: str) -> tuple[str, ...]:
        if name == "worker":
            return (sys.executable, "worker.py")
        if name in LISTENERS:
            return (sys.executable, "-m", "listener")
        # `python -m api`, not bare uvicorn: it configures logging from the settings.
        return (sys.executable, "-m", "api")

    def _spawn(self, name: str) -> None:
        process = ManagedProcess(
            name=name,
            argv=self._argv(name),
            log_path=self.logs / f"{name}.log",
            env=self._env(name),
            cwd=REPO_ROOT,
        )
        process.start()
        self._apps[name] = process

    def running(self, name: str) -> bool:
        process = self._apps.get(name)
        return process is not None and process.running()

    async def kill(self, name: str) -> None:
        """kill -9 of the app's process group; it stays down until `revive`."""
        self._held_down.add(name)
        process = self._apps[name]
        if process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        while process.running():  # noqa: ASYNC110 - a child process, no event to wait on
            await asyncio.sleep(0.05)

    def revive(self, name: str) -> None:
        self._held_down.discard(name)
        if not self.running(name):
            self._spawn(name)
            self.restarts[name] = self.restarts.get(name, 0) + 1

    async def wait_api(self, within: float = 90.0) -> bool:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=3.0) as http:
            while time.monotonic() < deadline:
                if port_open("127.0.0.1", self.api_port):
                    with contextlib.suppress(httpx.HTTPError):
                        await http.get(f"{self.api_url}/health")
                        return True
                await asyncio.sleep(0.2)
        return False

    async def _supervise(self) -> None:
        """Restart any app that died without the harness asking (as systemd or k8s would)."""
        while True:
            await asyncio.sleep(SUPERVISE_SECONDS)
            for name, process in list(self._apps.items()):
                if name in self._held_down or process.running():
                    continue
                code = process._proc.returncode if process._proc else None
                self.unplanned_exits.append(Exit(app=name, code=code, at=time.monotonic()))
                log.warning("chaos.app_exited", app=name, code=code)
                self._spawn(name)
                self.restarts[name] = self.restarts.get(name, 0) + 1

    async def leader(self) -> str | None:
        """Which listener holds the advisory lock (matched by its Postgres connection's port)."""
        key = lock_key(self.deployment.chain_id, self.deployment.escrow) & 0xFFFF_FFFF_FFFF_FFFF
        engine = make_engine(self.database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                port = await conn.scalar(
                    text(
                        "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a"
                        " ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted"
                        " AND l.classid = :hi AND l.objid = :lo"
                    ),
                    {"hi": key >> 32, "lo": key & 0xFFFF_FFFF},
                )
        except Exception:  # Postgres restarting: nobody can tell
            return None
        finally:
            await engine.dispose()
        if port is None:
            return None
        for name in LISTENERS:
            process = self._apps.get(name)
            if process is None or process.pid is None:
                continue
            with contextlib.suppress(psutil.Error):
                for conn in psutil.Process(process.pid).net_connections(kind="tcp"):
                    if conn.laddr and conn.laddr.port == port:
                        return name
        return None

    # --- servers ---

    async def restart_postgres(self, down_seconds: float) -> None:
        await asyncio.to_thread(self.postgres.stop)
        await asyncio.sleep(down_seconds)
        await asyncio.to_thread(self.postgres.start)

    async def restart_temporal(self, down_seconds: float) -> None:
        await asyncio.to_thread(self.temporal.stop)
        await asyncio.sleep(down_seconds)
        await asyncio.to_thread(self.temporal.start)

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        for name in reversed(list(self._apps)):
            await asyncio.to_thread(self._apps[name].stop)
        with contextlib.suppress(Exception):
            await self.proxy.stop()
        await asyncio.to_thread(self.temporal.stop)
        await asyncio.to_thread(self.postgres.stop)
        await asyncio.to_thread(self.node.stop)
