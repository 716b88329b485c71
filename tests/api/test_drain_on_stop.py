"""`python -m api` asked to stop (SIGTERM, as an operator or the restore fault stops it) ends its
open event streams at once and exits cleanly, instead of waiting for them until it is killed
with requests in flight (issue #18: 502s from the front proxy). A real process on the test's
Postgres and Temporal, the test's worker recording the booking."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import httpx
import pytest

from api.draining import drain
from bookme.embedded.apps import REPO_ROOT
from bookme.embedded.process import free_port
from tests.api.conftest import ApiFactory
from tests.api.fakes import FakeChain
from tests.api.helpers import CUSTOMER_AUTH, JWT_SECRET, SERVICE_AUTH, booking_body, serve
from tests.conftest import TemporalService

pytestmark = pytest.mark.integration

# The restore fault's stop timeout (ManagedProcess.stop): a process still up then is killed.
STOP_TIMEOUT_SECONDS = 15.0
START_SECONDS = 60.0


def api_env(
    database_url: str, temporal: TemporalService, task_queue: str, port: int
) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BOOKME_")}
    return base | {
        "BOOKME_DATABASE_URL": database_url,
        "BOOKME_TEMPORAL_ADDRESS": temporal.address,
        "BOOKME_TEMPORAL_NAMESPACE": temporal.namespace,
        "BOOKME_TASK_QUEUE": task_queue,
        "BOOKME_API_HOST": "127.0.0.1",
        "BOOKME_API_PORT": str(port),
        "BOOKME_JWT_SECRET": JWT_SECRET,
        "BOOKME_RPC_URLS": "",
        "BOOKME_LOG_LEVEL": "WARNING",
    }


async def until_live(http: httpx.AsyncClient, process: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(START_SECONDS):
        while process.returncode is None:
            try:
                if (await http.get("/health/live")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"python -m api exited with {process.returncode} before serving")


async def test_sigterm_ends_open_streams_and_the_process_exits_cleanly(
    migrated_db: str, temporal: TemporalService, task_queue: str, worker: FakeChain
) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "api",
        env=api_env(migrated_db, temporal, task_queue, port),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            await until_live(http, process)
            created = await http.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
            assert created.status_code == 201, created.text
            path = f"/bookings/{created.json()['id']}/stream"
            async with http.stream("GET", path, headers=CUSTOMER_AUTH) as stream:
                assert stream.status_code == 200
                lines = stream.aiter_lines()
                assert (await anext(lines)).startswith("retry:")  # the stream is open
                process.send_signal(signal.SIGTERM)
                async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
                    # Ends (the client reconnects elsewhere with Last-Event-ID), not cut.
                    async for _ in lines:
                        pass
                    code = await process.wait()
        assert code == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_draining_process_is_not_ready(factory: ApiFactory) -> None:
    app = factory.app()
    async with serve(app) as http:
        assert (await http.get("/health/ready")).status_code == 200
        drain(app)
        refused = await http.get("/health/ready")
        assert refused.status_code == 503
        assert refused.json()["checks"]["process"]["code"] == "draining"
        assert int(refused.headers["Retry-After"]) >= 1
        assert (await http.get("/health/live")).status_code == 200
