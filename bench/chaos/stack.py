"""The chaos run's own stack at production shape: anvil, one Postgres, one Temporal (SQLite, so it
survives a restart), and our apps under a supervisor that restarts whatever exits, killed by us or
not: two worker replicas, a listener leader and two standbys, two API replicas behind a reverse
proxy (bench/chaos/http_proxy.py) that the workload calls.

Fault proxies sit where the plan cuts the network: the RPC proxy in front of anvil for the
listeners (bench/chaos/rpc_proxy.py), and a TCP proxy (bench/chaos/tcp_proxy.py) between each
worker replica and Postgres and between each API replica and Temporal, for partitions."""

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
from bench.chaos.http_proxy import ReverseProxy
from bench.chaos.rpc_proxy import FaultProxy
from bench.chaos.tcp_proxy import TcpFaultProxy
from bench.services import LocalServices
from bookme.embedded.apps import REPO_ROOT
from bookme.embedded.process import ManagedProcess, free_port, port_open
from db.engine import make_engine
from listener.lock import lock_key

log = structlog.get_logger(__name__)

DATABASE = "bookme_chaos"
WORKERS = ("worker-1", "worker-2")
LISTENERS = ("listener-a", "listener-b", "listener-c")
APIS = ("api-1", "api-2")
APPS = (*WORKERS, *LISTENERS, *APIS)
SUPERVISE_SECONDS = 0.5
# Debian's libfaketime (`apt-get install faketime`, installed by .ci/run): the clock fault.
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


@dataclass(frozen=True, kw_only=True)
class Exit:
    """An app that exited while the harness had not stopped it."""

    app: str
    code: int | None
    at: float


@dataclass
class ChaosStack(LocalServices):
    timers: ChaosTimers = field(default_factory=ChaosTimers)
    database: str = DATABASE
    # A block a second: confirmations keep coming when the workload goes quiet.
    block_time: int | None = 1
    proxy: FaultProxy = field(init=False)
    # The workload's way in; each replica also listens on its own port (health probes).
    front: ReverseProxy = field(init=False)
    api_ports: dict[str, int] = field(default_factory=dict)
    # Where a partition can be made: app name -> the TCP proxy its Postgres or Temporal is behind.
    partitions: dict[str, TcpFaultProxy] = field(default_factory=dict)
    # Workers run under libfaketime, their clocks at +0 until the clock fault steps one.
    faketime: bool = False
    unplanned_exits: list[Exit] = field(default_factory=list)
    restarts: dict[str, int] = field(default_factory=dict)
    _apps: dict[str, ManagedProcess] = field(default_factory=dict)
    _held_down: set[str] = field(default_factory=set)
    _supervisor: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        # Temporal on SQLite: its state survives the restarts the chaos plan makes.
        self.temporal_db_file = self.workdir / "temporal.sqlite"
        super().__post_init__()

    @property
    def api_url(self) -> str:
        return self.front.url

    def replica_url(self, api: str) -> str:
        return f"http://127.0.0.1:{self.api_ports[api]}"

    @property
    def rpc_url(self) -> str:
        return self.node.http_url

    async def start(self) -> None:
        await self.start_services()
        self.proxy = FaultProxy(self.node.http_url, self.node.ws_url)
        await self.proxy.start()
        self.api_ports = {api: free_port() for api in APIS}
        self.front = ReverseProxy(list(self.api_ports.values()))
        await self.front.start()
        for worker in WORKERS:
            self.partitions[worker] = TcpFaultProxy(
                f"{worker}->postgres", self.postgres.host, self.postgres.port
            )
        temporal_host, _, temporal_port = self.temporal_server.address.rpartition(":")
        for api in APIS:
            self.partitions[api] = TcpFaultProxy(
                f"{api}->temporal", temporal_host, int(temporal_port)
            )
        for partition in self.partitions.values():
            await partition.start()
        for name in APPS:
            self._spawn(name)
        for api in APIS:
            await self.wait_api(api)
        self._supervisor = asyncio.create_task(self._supervise())

    # --- apps ---

    def _env(self, name: str) -> dict[str, str]:
        rpc = (
            f"{self.proxy.ws_url},{self.proxy.http_url}"
            if name in LISTENERS
            else self.node.http_url
        )
        env = self.app_env(rpc)
        partition = self.partitions.get(name)
        if name in WORKERS and partition is not None:
            env["BOOKME_DATABASE_URL"] = self.database_url.replace(
                f"@{self.postgres.host}:{self.postgres.port}/", f"@{partition.address}/"
            )
        if name in APIS and partition is not None:
            env["BOOKME_TEMPORAL_ADDRESS"] = partition.address
        if name in WORKERS and self.faketime and LIBFAKETIME.exists():
            clock = self._clock_file(name)
            if not clock.exists():
                clock.write_text("+0\n", encoding="utf-8")
            # Python's sleep fails (EINVAL) under libfaketime 0.9.10 when only the wall clock
            # is faked, so the monotonic clock steps with it: a harsher fault, never backwards.
            env |= {
                "LD_PRELOAD": str(LIBFAKETIME),
                "FAKETIME_TIMESTAMP_FILE": str(clock),
                "FAKETIME_CACHE_DURATION": "1",
            }
        return env | {
            # As in production: the console renderer draws each traceback with rich (locals
            # and all) on the event loop, seconds of CPU per error, and an outage makes many.
            "BOOKME_LOG_JSON": "true",
            "BOOKME_HEAD_STALE_AFTER_SECONDS": "10",
            "BOOKME_API_HOST": "127.0.0.1",
            "BOOKME_API_PORT": str(self.api_ports.get(name, 0)),
            **self.timers.env(),
        }

    def _argv(self, name: str) -> tuple[str, ...]:
        if name in WORKERS:
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

    def pids(self) -> dict[str, int | None]:
        """Every process of the stack by name, ours and the servers (for the soak's watch)."""
        servers = {
            "anvil": self.node._process,
            "postgres": self.postgres._process,
            "temporal": self.temporal_server._process,
        }
        return {name: process.pid for name, process in self._apps.items()} | {
            name: process.pid if process is not None else None for name, process in servers.items()
        }

    def _clock_file(self, worker: str) -> Path:
        return self.workdir / f"clock-{worker}.rc"

    def set_clock(self, worker: str, offset: str) -> None:
        """The worker's clock offset from now on (libfaketime re-reads it within a second)."""
        if not (self.faketime and LIBFAKETIME.exists()):
            raise RuntimeError(f"libfaketime not in use ({LIBFAKETIME}: apt-get install faketime)")
        self._clock_file(worker).write_text(f"{offset}\n", encoding="utf-8")

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

    async def wait_api(self, api: str, within: float = 90.0) -> bool:
        """Until the replica answers on its own port."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=3.0) as http:
            while time.monotonic() < deadline:
                if port_open("127.0.0.1", self.api_ports[api]):
                    with contextlib.suppress(httpx.HTTPError):
                        await http.get(f"{self.replica_url(api)}/health/live")
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
        await asyncio.to_thread(self.temporal_server.stop)
        await asyncio.sleep(down_seconds)
        await asyncio.to_thread(self.temporal_server.start)

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        for name in reversed(list(self._apps)):
            await asyncio.to_thread(self._apps[name].stop)
        with contextlib.suppress(Exception):
            await self.proxy.stop()
        with contextlib.suppress(Exception):
            await self.front.stop()
        for partition in self.partitions.values():
            with contextlib.suppress(Exception):
                await partition.stop()
        await self.stop_services(keep_data=True)
