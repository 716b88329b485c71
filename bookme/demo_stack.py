"""A private `bookme dev` for the demo: fresh state, free ports, short timers; stopped after."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bookme.embedded.process import free_port, port_open

READY_LINE = "BookMe dev stack ready"
START_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 45.0


@dataclass(frozen=True, kw_only=True)
class DemoTimers:
    """The booking timers the private stack runs with (seconds)."""

    auto_complete_delay_seconds: int = 20
    payment_deadline_seconds: int = 40

    def env(self) -> dict[str, str]:
        return {
            "BOOKME_AUTO_COMPLETE_DELAY_SECONDS": str(self.auto_complete_delay_seconds),
            "BOOKME_PAYMENT_DEADLINE_SECONDS": str(self.payment_deadline_seconds),
        }


@dataclass(frozen=True, kw_only=True)
class StackUrls:
    """Where a running stack answers."""

    api_url: str
    rpc_url: str
    temporal_address: str
    temporal_ui_url: str
    deployment_file: Path


class PrivateStack:
    """`python -m bookme dev` as a child process under its own data dir and ports."""

    def __init__(self, data_dir: Path, timers: DemoTimers) -> None:
        self.data_dir = data_dir
        self.timers = timers
        self.log_file = data_dir / "bookme-dev.out"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> StackUrls:
        """Start from empty state and return once the API answers (bounded)."""
        # Fresh each run: an interrupted earlier demo's bookings must not move money in this one.
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True)
        self.data_dir.chmod(0o755)  # Postgres may run as an unprivileged account
        ports = {
            name: free_port()
            for name in ("postgres", "temporal", "temporal_ui", "anvil", "api", "worker_metrics")
        }
        deployment_file = self.data_dir / "deployment.json"
        env = {
            k: v
            for k, v in os.environ.items()
            # A URL here would point the private stack at someone else's service.
            if k
            not in (
                "BOOKME_DATABASE_URL",
                "BOOKME_TEMPORAL_ADDRESS",
                "BOOKME_RPC_URLS",
                "BOOKME_ESCROW_ADDRESS",
                "BOOKME_USDC_ADDRESS",
            )
        }
        env.update(
            {
                "BOOKME_DATA_DIR": str(self.data_dir),
                "BOOKME_DEPLOYMENT_FILE": str(deployment_file),
                "BOOKME_DEV_POSTGRES_PORT": str(ports["postgres"]),
                "BOOKME_DEV_TEMPORAL_PORT": str(ports["temporal"]),
                "BOOKME_DEV_TEMPORAL_UI_PORT": str(ports["temporal_ui"]),
                "BOOKME_DEV_ANVIL_PORT": str(ports["anvil"]),
                "BOOKME_API_HOST": "127.0.0.1",
                "BOOKME_API_PORT": str(ports["api"]),
                # A running `make dev`'s worker already holds the default metrics port.
                "BOOKME_WORKER_METRICS_PORT": str(ports["worker_metrics"]),
                **self.timers.env(),
            }
        )
        with self.log_file.open("wb") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "bookme", "dev"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group, so a stop reaches every child
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"the private dev stack exited with {self._process.returncode}; "
                    f"see {self.log_file}"
                )
            if READY_LINE in self.log_file.read_text(errors="replace") and port_open(
                "127.0.0.1", ports["api"]
            ):
                return StackUrls(
                    api_url=f"http://127.0.0.1:{ports['api']}",
                    rpc_url=f"http://127.0.0.1:{ports['anvil']}",
                    temporal_address=f"127.0.0.1:{ports['temporal']}",
                    temporal_ui_url=f"http://127.0.0.1:{ports['temporal_ui']}",
                    deployment_file=deployment_file,
                )
            time.sleep(0.5)
        raise RuntimeError(
            f"the private dev stack was not ready in {START_TIMEOUT_SECONDS:.0f}s; "
            f"see {self.log_file}"
        )

    def remove_data(self) -> None:
        """Delete the stack's state (after a passing run; a failed one keeps it to inspect)."""
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def stop(self) -> None:
        """SIGTERM (a clean `bookme dev` shutdown), then SIGKILL of its group if it hangs."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
