"""`python -m listener` started before its Temporal answers waits for it (issue #18).

It used to exit 2 at once, like the worker. Now it stays up and logs each attempt, follows the
chain once Temporal answers (a proxy opened later on the port it was given), and exits 0 on
SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.chaos.tcp_proxy import TcpFaultProxy
from bookme.embedded.process import free_port
from tests.conftest import TemporalService
from tests.listener.driver import EscrowDriver
from tests.workflows.test_worker_process import _read_until

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


async def test_listener_waits_for_temporal_then_follows_the_chain(
    driver: EscrowDriver,
    engine: AsyncEngine,  # the migrated database
    database_url: str,
    temporal: TemporalService,
    tmp_path: Path,
):
    port = free_port()
    host, temporal_port = temporal.address.rsplit(":", 1)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BOOKME_")},
        "BOOKME_DATABASE_URL": database_url,
        "BOOKME_TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
        "BOOKME_RPC_URLS": f"{driver.node.ws_url},{driver.node.http_url}",
        "BOOKME_CHAIN_ID": str(driver.node.chain_id),
        "BOOKME_ESCROW_ADDRESS": driver.escrow,
        "BOOKME_DEPLOYMENT_FILE": str(tmp_path / "none.json"),
        "BOOKME_LISTENER_METRICS_PORT": "0",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "listener",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    proxy = TcpFaultProxy("temporal", host, int(temporal_port), port=port)
    try:
        for _ in range(3):  # 0.5 s then 1 s apart: it outlives refused connections
            await asyncio.wait_for(_read_until(process.stdout, "temporal_unreachable"), 30)
            assert process.returncode is None
        await proxy.start()
        await asyncio.wait_for(_read_until(process.stdout, "listener_starting"), 30)
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(_read_until(process.stdout, "listener_stopped"), 30)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await proxy.stop()
