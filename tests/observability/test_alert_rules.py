"""deploy/prometheus: the rules pass `promtool check rules` and their `promtool test rules`, the
example config is valid, and a real Prometheus (Debian's `prometheus` package) fires ListenerDown
once a real listener it scrapes is stopped."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from bookme.embedded.anvil import AnvilNode
from bookme.embedded.process import free_port
from db.migrate import upgrade_async
from tests.conftest import TemporalService
from tests.contracts.harness import EscrowHarness

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "deploy" / "prometheus"
INSTALL_HINT = (
    "not found: install Debian's prometheus package (apt-get install -y prometheus; "
    ".ci/run does it; README: prerequisites of make test)"
)


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} {INSTALL_HINT}")
    return path


@pytest.fixture(scope="module")
def promtool() -> str:
    return _binary("promtool")


def _run(*argv: str, cwd: Path = RULES_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_the_rules_are_valid(promtool: str) -> None:
    result = _run(promtool, "check", "rules", "bookme.rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_rules_unit_tests_pass(promtool: str) -> None:
    result = _run(promtool, "test", "rules", "tests/bookme.rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_example_scrape_config_is_valid(promtool: str) -> None:
    result = _run(promtool, "check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def prometheus_binary() -> str:
    return _binary("prometheus")


def _start_prometheus(binary: str, config: Path, data: Path, port: int) -> subprocess.Popen[bytes]:
    with (data.parent / "prometheus.log").open("ab") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _start_listener(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "listener"], cwd=ROOT, env=env, stdout=out, stderr=out
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _until(http: httpx.AsyncClient, path: str, params: dict[str, str], wanted: Any) -> Any:
    """Poll Prometheus' API until `wanted(data)` is true; return that data."""
    while True:
        try:
            data = (await http.get(path, params=params)).json()["data"]
        except (httpx.HTTPError, ValueError, KeyError):
            data = None
        if data is not None and wanted(data):
            return data
        await asyncio.sleep(0.5)


def _alert(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((a for a in data["alerts"] if a["labels"]["alertname"] == name), None)


async def test_a_stopped_listener_fires_listener_down(
    prometheus_binary: str,
    temporal: TemporalService,
    database_url: str,
    fresh_chain: AnvilNode,
    tmp_path: Path,
) -> None:
    await upgrade_async(database_url)
    escrow = EscrowHarness(fresh_chain)
    listener_port, prometheus_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    # The repository's rules as they are; only the intervals are short for the test.
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{RULES_DIR / 'bookme.rules.yml'}']\n"
        "scrape_configs:\n"
        "  - job_name: bookme-listener\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{listener_port}']}}]\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BOOKME_")},
        "BOOKME_DATABASE_URL": database_url,
        "BOOKME_TEMPORAL_ADDRESS": temporal.address,
        "BOOKME_RPC_URLS": f"{fresh_chain.ws_url},{fresh_chain.http_url}",
        "BOOKME_CHAIN_ID": str(fresh_chain.chain_id),
        "BOOKME_ESCROW_ADDRESS": escrow.escrow.address,
        "BOOKME_DEPLOYMENT_FILE": str(tmp_path / "none.json"),
        "BOOKME_CONFIRMATIONS": "0",
        "BOOKME_LISTENER_METRICS_PORT": str(listener_port),
    }
    listener = _start_listener(env, tmp_path / "listener.log")
    prometheus = _start_prometheus(prometheus_binary, config, tmp_path / "data", prometheus_port)
    try:
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{prometheus_port}") as http,
            asyncio.timeout(90),
        ):
            # Scraped and following: its lag is a series, and nothing fires.
            await _until(
                http,
                "/api/v1/query",
                {"query": 'bookme_listener_lag_blocks{job="bookme-listener"}'},
                lambda data: bool(data["result"]),
            )
            # Down while it started (the first scrapes failed); up now, so it resolves.
            await _until(
                http, "/api/v1/alerts", {}, lambda data: _alert(data, "ListenerDown") is None
            )
            _stop(listener)
            fired = await _until(
                http,
                "/api/v1/alerts",
                {},
                lambda data: (
                    (a := _alert(data, "ListenerDown")) is not None and a["state"] == "firing"
                ),
            )
        down = _alert(fired, "ListenerDown")
        assert down is not None
        assert down["labels"]["severity"] == "critical"
    finally:
        _stop(listener)
        _stop(prometheus)
