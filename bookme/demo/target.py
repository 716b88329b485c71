"""Which stack the demo drives: the running `make dev`, or a private `bookme dev` of its own.

A private stack gets fresh state, free ports and short timers, and is stopped afterwards
(its data is removed after a passing run, kept to inspect after a failing one).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import httpx

from bookme.demo.errors import TimersTooLong
from bookme.embedded.process import free_port, port_open
from bookme.settings import Settings

BUDGET_SECONDS = 300  # the whole demo, stack start excluded
# A running stack's timers must let the auto-complete and deadline bookings end in the budget.
MAX_TIMER_SECONDS = 120
READY_LINE = "BookMe dev stack ready"
START_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 45.0
PORTS = (
    "postgres",
    "temporal",
    "temporal_ui",
    "anvil",
    "api",
    "worker_metrics",
    "listener_metrics",
)
# A URL here would point the private stack at someone else's service.
FOREIGN_ENV = (
    "BOOKME_DATABASE_URL",
    "BOOKME_TEMPORAL_ADDRESS",
    "BOOKME_RPC_URLS",
    "BOOKME_ESCROW_ADDRESS",
    "BOOKME_USDC_ADDRESS",
)
SHORT_TIMERS_DEV = (
    "BOOKME_AUTO_COMPLETE_DELAY_SECONDS=20 BOOKME_PAYMENT_DEADLINE_SECONDS=40 make dev"
)
HOW_TO_START = (
    "Start the stack in another terminal with demo timers (wait for 'BookMe dev stack ready'):\n"
    f"  {SHORT_TIMERS_DEV}\n"
    "then run `make demo` again (or `make demo` alone starts a private stack)."
)


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


@dataclass(frozen=True, kw_only=True)
class Target:
    """The stack the demo drives."""

    urls: StackUrls
    namespace: str
    private: bool


# Runs the six bookings on a target and returns the exit code (0: all ended right).
Drive = Callable[[Target], int]


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
        ports = {name: free_port() for name in PORTS}
        urls = StackUrls(
            api_url=f"http://127.0.0.1:{ports['api']}",
            rpc_url=f"http://127.0.0.1:{ports['anvil']}",
            temporal_address=f"127.0.0.1:{ports['temporal']}",
            temporal_ui_url=f"http://127.0.0.1:{ports['temporal_ui']}",
            deployment_file=self.data_dir / "deployment.json",
        )
        with self.log_file.open("wb") as out:
            self._process = process = subprocess.Popen(
                [sys.executable, "-m", "bookme", "dev"],
                env=self._env(ports, urls.deployment_file),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group, so a stop reaches every child
            )
        self._wait_ready(process, ports["api"])
        return urls

    def _env(self, ports: dict[str, int], deployment_file: Path) -> dict[str, str]:
        """This process's environment, minus foreign services, plus the stack's own places."""
        env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
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
                "BOOKME_LISTENER_METRICS_PORT": str(ports["listener_metrics"]),
                **self.timers.env(),
            }
        )
        return env

    def _wait_ready(self, process: subprocess.Popen[bytes], api_port: int) -> None:
        """Until the stack says it is ready and its API port is open; raise if it exits first."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the private dev stack exited with {process.returncode}; see {self.log_file}"
                )
            if READY_LINE in self.log_file.read_text(errors="replace") and port_open(
                "127.0.0.1", api_port
            ):
                return
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


def running_target(settings: Settings) -> Target:
    """Where `make dev` answers with this checkout's settings."""
    rpc = next((u for u in settings.rpc_urls if u.startswith("http")), None)
    return Target(
        urls=StackUrls(
            api_url=f"http://{settings.api_host}:{settings.api_port}",
            rpc_url=rpc or f"http://127.0.0.1:{settings.dev_anvil_port}",
            temporal_address=settings.temporal_address or f"127.0.0.1:{settings.dev_temporal_port}",
            temporal_ui_url=f"http://127.0.0.1:{settings.dev_temporal_ui_port}",
            deployment_file=settings.deployment_file,
        ),
        namespace=settings.temporal_namespace,
        private=False,
    )


def api_answers(api_url: str) -> bool:
    try:
        httpx.get(f"{api_url}/health", timeout=3.0)
    except httpx.HTTPError:
        return False
    return True


def default_data_dir(settings: Settings) -> Path:
    """One dir per run, so two demos at once never share (or delete) each other's state."""
    return settings.data_dir.resolve() / "demo-stacks" / str(os.getpid())


def drive_chosen_stack(
    settings: Settings, *, stack: str, keep: bool, out: TextIO, drive: Drive
) -> int:
    """`--stack auto`: the running stack if it answers and its timers fit, else a private one."""
    if stack in ("auto", "running"):
        code = _on_running_stack(settings, out, drive)
        if code is not None:
            return code
        if stack == "running":
            out.write(HOW_TO_START + "\n")
            return 2
    return _on_private_stack(settings, keep=keep, out=out, drive=drive)


def _on_running_stack(settings: Settings, out: TextIO, drive: Drive) -> int | None:
    """The demo's exit code on `make dev`, or None when it cannot run there."""
    target = running_target(settings)
    if not api_answers(target.urls.api_url):
        out.write(f"Nothing answers at {target.urls.api_url} (no `make dev` running).\n")
        return None
    out.write(f"Using the running stack at {target.urls.api_url}\n")
    try:
        return drive(target)
    except TimersTooLong as exc:
        out.write(
            f"The running stack's timers are too long for a {BUDGET_SECONDS}s demo "
            f"({exc}); its first booking was cancelled unpaid.\n"
            "To run the demo on your own `make dev`, restart it as\n"
            f"  {SHORT_TIMERS_DEV}\n"
        )
        return None


def _on_private_stack(settings: Settings, *, keep: bool, out: TextIO, drive: Drive) -> int:
    """Start a private stack, drive it, always stop it; its data goes only after a pass."""
    timers = DemoTimers()
    private = PrivateStack(default_data_dir(settings), timers)
    out.write(
        "Starting a private dev stack (fresh data, free ports) with short timers: "
        f"BOOKME_AUTO_COMPLETE_DELAY_SECONDS={timers.auto_complete_delay_seconds} "
        f"BOOKME_PAYMENT_DEADLINE_SECONDS={timers.payment_deadline_seconds}; "
        f"its log: {private.log_file}\n"
    )
    out.flush()
    started = time.monotonic()
    code = 1
    try:
        urls = private.start()
        out.write(
            f"Private stack ready in {time.monotonic() - started:.1f}s: API {urls.api_url}, "
            f"Temporal UI {urls.temporal_ui_url}, RPC {urls.rpc_url}\n"
        )
        code = drive(Target(urls=urls, namespace=settings.temporal_namespace, private=True))
        if not keep:
            out.write(
                "The private stack stops now, and its Temporal UI links with it; "
                "`.venv/bin/python -m bookme demo --keep` keeps it running until Ctrl-C.\n"
            )
        if keep:
            out.write("Private stack kept running for the Temporal UI links; Ctrl-C stops it.\n")
            out.flush()
            _wait_for_interrupt()
        return code
    finally:
        private.stop()
        if code == 0:
            private.remove_data()
            out.write("Private stack stopped and its data removed.\n")
        else:
            out.write(f"Private stack stopped; its data and logs stay in {private.data_dir}\n")


def _wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return
