"""`bookme dev` comes up, prints where things run, and leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest

from bookme.embedded.process import free_port
from worker import GRACEFUL_SHUTDOWN

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _ports() -> dict[str, str]:
    return {
        "BOOKME_DEV_POSTGRES_PORT": str(free_port()),
        "BOOKME_DEV_TEMPORAL_PORT": str(free_port()),
        "BOOKME_DEV_TEMPORAL_UI_PORT": str(free_port()),
        "BOOKME_DEV_ANVIL_PORT": str(free_port()),
        # A running `make dev` (or another test's process) may hold the default metrics ports.
        "BOOKME_WORKER_METRICS_PORT": str(free_port()),
        "BOOKME_LISTENER_METRICS_PORT": str(free_port()),
    }


def _start_dev(
    tmp_path: Path, ports: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], Path]:
    env = {**os.environ, "BOOKME_DATA_DIR": str(tmp_path / "dev"), **(ports or _ports())}
    for name in ("BOOKME_DATABASE_URL", "BOOKME_TEMPORAL_ADDRESS", "BOOKME_RPC_URLS"):
        env.pop(name, None)
    out = tmp_path / f"dev-{time.monotonic_ns()}.out"  # one per run: no stale "ready" line
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bookme", "dev"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return proc, out


def _wait_for(out: Path, proc: subprocess.Popen[str], text: str, seconds: float = 120) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        content = out.read_text()
        if text in content:
            return content
        assert proc.poll() is None, f"bookme dev exited early:\n{content}"
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} within {seconds}s:\n{out.read_text()}")


def _descendants(pid: int) -> list[psutil.Process]:
    return list(psutil.Process(pid).children(recursive=True))


def _assert_all_gone(procs: list[psutil.Process]) -> None:
    # The worker may spend its whole graceful shutdown on an activity in flight (the webhook
    # relay's, say) before it exits: wait past that, with room for a loaded machine.
    _, alive = psutil.wait_procs(procs, timeout=GRACEFUL_SHUTDOWN.total_seconds() + 30)
    # A zombie has exited and holds nothing but its pid; reaping it is its new parent's job,
    # and PID 1 in a container may be slow to do it (one CI run failed on such a zombie).
    running = [p for p in alive if not _exited(p)]
    assert running == [], f"left behind: {[(p.pid, _cmdline(p)) for p in running]}"


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return "?"


def _exited(proc: psutil.Process) -> bool:
    try:
        return bool(proc.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_dev_starts_everything_and_stops_cleanly(tmp_path, stop_signal):
    proc, out = _start_dev(tmp_path)
    try:
        summary = _wait_for(out, proc, "Ctrl-C stops everything")
        children = _descendants(proc.pid)
        names = " ".join(" ".join(p.cmdline()) for p in children)
        assert "postgres" in names
        assert "temporal" in names
        assert "anvil" in names
        # The API through its production entry point, which configures logging first.
        assert f"{sys.executable} -m api" in names
        assert "Temporal UI  http://127.0.0.1:" in summary
        assert "LOCAL ONLY" in summary
        proc.send_signal(stop_signal)
        assert proc.wait(60) == 0
        _assert_all_gone(children)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_killed_dev_leaves_no_orphans(tmp_path):
    """Even SIGKILL, which no handler sees: the children die with their parent."""
    proc, out = _start_dev(tmp_path)
    try:
        _wait_for(out, proc, "Ctrl-C stops everything")
        children = _descendants(proc.pid)
        assert children
        proc.kill()
        proc.wait(10)
        _assert_all_gone(children)
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_dev_resumes_with_the_same_data(tmp_path):
    ports = _ports()
    db = f"postgresql://postgres@127.0.0.1:{ports['BOOKME_DEV_POSTGRES_PORT']}/bookme"
    rpc = f"http://127.0.0.1:{ports['BOOKME_DEV_ANVIL_PORT']}"

    proc, out = _start_dev(tmp_path, ports)
    try:
        _wait_for(out, proc, "Ctrl-C stops everything")
        conn = await asyncpg.connect(db)
        await conn.execute("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('still here')")
        await conn.close()
        tx = _rpc(
            rpc, "eth_sendTransaction", {"from": DEV_SENDER, "to": DEV_RECEIVER, "value": "0x1"}
        )
        _wait_mined(rpc, tx)  # dev mines a block every 2 s
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0

    proc, out = _start_dev(tmp_path, ports)
    try:
        _wait_for(out, proc, "Ctrl-C stops everything")
        conn = await asyncpg.connect(db)
        assert await conn.fetchval("SELECT note FROM kept") == "still here"
        await conn.close()
        assert _rpc(rpc, "eth_getTransactionReceipt", tx) is not None
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0


DEV_SENDER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
DEV_RECEIVER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def _wait_mined(url: str, tx: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while _rpc(url, "eth_getTransactionReceipt", tx) is None:
        assert time.monotonic() < deadline, f"{tx} not mined in {seconds}s"
        time.sleep(0.2)


def _rpc(url: str, method: str, *params: object) -> Any:
    body = httpx.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    ).json()
    assert "error" not in body, body
    return body["result"]
