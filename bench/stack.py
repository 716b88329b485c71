"""The bench's own embedded stack: anvil (a block per transaction), Postgres, Temporal, and
our worker, listener and API processes, all on free ports under one scratch directory."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
import psutil
from temporalio.client import Client

from bench.services import LocalServices
from bookme.embedded.apps import REPO_ROOT
from bookme.embedded.process import ManagedProcess, free_port, port_open
from chain.client import ChainClient
from workflows import DATA_CONVERTER

DATABASE = "bookme_bench"


class RssSampler:
    """Peak resident memory per process name, sampled on a thread every `interval` seconds."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.pids: dict[str, int] = {}
        self.peak_mb: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sample(self) -> None:
        for name, pid in list(self.pids.items()):
            try:
                rss = psutil.Process(pid).memory_info().rss / 2**20
            except psutil.Error:
                continue
            self.peak_mb[name] = max(self.peak_mb.get(name, 0.0), rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()


@dataclass
class BenchStack(LocalServices):
    """Servers plus our three processes; `listener_mode` is "ws" (newHeads) or "http" (polling)."""

    database: str = DATABASE
    api_url: str = field(init=False)
    rss: RssSampler = field(default_factory=RssSampler)
    _apps: dict[str, ManagedProcess] = field(default_factory=dict)

    async def start(self) -> None:
        await self.start_services()
        self.rss.start()
        await asyncio.to_thread(self._start_app, "worker", (sys.executable, "worker.py"), {})
        await self.start_listener("ws")
        self.api_url = await self.start_api("api", {})

    def create_database(self) -> str:
        """A fresh empty database on the bench's server (the in-process listener runs)."""
        name = f"bench_{uuid.uuid4().hex[:12]}"
        self.postgres.psql(f'CREATE DATABASE "{name}"')
        return self.postgres.url_for(name)

    async def temporal(self) -> Client:
        return await Client.connect(
            self.temporal_server.address,
            namespace=self.temporal_server.namespace,
            data_converter=DATA_CONVERTER,
        )

    def env(self) -> dict[str, str]:
        env = self.app_env(f"{self.node.ws_url},{self.node.http_url}") | {
            # Payments count as seen at 0 confirmations (issue #5's latency goal is stated so).
            "BOOKME_CONFIRMATIONS": "0",
            # Bytecode cached as the image caches it (its compileall), outside the source tree.
            "PYTHONPYCACHEPREFIX": str(self.workdir / "pycache"),
        }
        # The worker's sandbox re-imports the workflow modules for every booking: without
        # bytecode it compiles their source each time (7% of the worker's CPU in a profile).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return env

    def _start_app(self, name: str, argv: tuple[str, ...], extra: Mapping[str, str]) -> None:
        env = self.env() | dict(extra)
        process = ManagedProcess(
            name=name, argv=argv, log_path=self.logs / f"{name}.log", env=env, cwd=REPO_ROOT
        )
        process.start()
        self._apps[name] = process
        process.wait_ready(lambda: True, 5)
        if process.pid is not None:
            self.rss.pids[name] = process.pid

    async def start_listener(
        self, mode: str, env: Mapping[str, str] | None = None, *, behind: int = 0
    ) -> None:
        """(Re)start the listener: "ws" follows newHeads, "http" polls at the configured interval.

        `env` overrides its environment; `behind` is how far below the head its cursor stays
        (its confirmations).
        """
        old = self._apps.pop("listener", None)
        if old is not None:
            await asyncio.to_thread(old.stop)
        extra = {} if mode == "ws" else {"BOOKME_RPC_URLS": self.node.http_url}
        await asyncio.to_thread(
            self._start_app, "listener", (sys.executable, "-m", "listener"), extra | dict(env or {})
        )
        # Leader lock taken and caught up: the cursor reaches the head.
        await self.wait_listener_caught_up(behind=behind)

    async def wait_listener_caught_up(self, within: float = 60.0, *, behind: int = 0) -> None:
        from sqlalchemy import text

        from db.engine import make_engine

        engine = make_engine(self.database_url, pool_size=1)
        try:
            async with ChainClient([self.node.http_url]) as chain:
                head = await chain.block_number()
                deadline = time.monotonic() + within
                while time.monotonic() < deadline:
                    async with engine.connect() as conn:
                        row = (
                            await conn.execute(
                                text("SELECT max(last_block_number) FROM chain_cursor")
                            )
                        ).scalar()
                    if row is not None and int(row) >= head - behind:
                        return
                    await asyncio.sleep(0.1)
        finally:
            await engine.dispose()
        raise RuntimeError(f"the listener did not catch up in {within:.0f}s; see {self.logs}")

    async def start_api(self, name: str, extra: Mapping[str, str]) -> str:
        port = free_port()
        argv = (
            sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
        )  # fmt: skip
        await asyncio.to_thread(self._start_app, name, argv, extra)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient() as http:
            while time.monotonic() < deadline:
                if port_open("127.0.0.1", port):
                    try:
                        await http.get(f"{url}/health", timeout=2.0)  # any answer: it serves
                    except httpx.HTTPError:
                        pass
                    else:
                        return url
                await asyncio.sleep(0.2)
        raise RuntimeError(f"API {name} not ready; see {self.logs / name}.log")

    def stop_app(self, name: str) -> None:
        process = self._apps.pop(name, None)
        if process is not None:
            process.stop()
        self.rss.pids.pop(name, None)

    async def stop(self) -> None:
        self.rss.stop()
        for name in list(self._apps)[::-1]:
            await asyncio.to_thread(self.stop_app, name)
        await self.stop_services()
