"""The project's own processes (worker, listener, API) run by `make dev` against resolved services."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from bookme.embedded.process import ManagedProcess, port_open

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, kw_only=True)
class AppSpec:
    name: str
    argv: tuple[str, ...]
    ready: Callable[[], bool]


def app_specs(api_host: str, api_port: int) -> list[AppSpec]:
    """Worker first (it serves the task queue the others use), then listener, then API."""
    python = sys.executable

    def api_answers() -> bool:
        if not port_open(api_host, api_port):
            return False
        try:
            httpx.get(f"http://{api_host}:{api_port}/health", timeout=2.0)
        except httpx.HTTPError:
            return False
        return True

    return [
        AppSpec(name="worker", argv=(python, "worker.py"), ready=lambda: True),
        AppSpec(name="listener", argv=(python, "-m", "listener"), ready=lambda: True),
        # The production entry point (it configures structured logging before uvicorn starts);
        # host and port come from BOOKME_API_HOST / BOOKME_API_PORT in the apps' environment.
        AppSpec(
            name="api",
            argv=(python, "-m", "api"),
            ready=api_answers,
        ),
    ]


class AppProcesses:
    """Start the apps with the resolved service URLs in their environment; stop in reverse."""

    def __init__(self, env: Mapping[str, str], logs_dir: Path) -> None:
        self._env = {**os.environ, **env}
        self._logs_dir = logs_dir
        self._running: list[ManagedProcess] = []

    def log_files(self, specs: list[AppSpec]) -> dict[str, Path]:
        return {spec.name: self._logs_dir / f"{spec.name}.log" for spec in specs}

    def start(self, specs: list[AppSpec], timeout: float = 60.0) -> None:
        for spec in specs:
            process = ManagedProcess(
                name=spec.name,
                argv=spec.argv,
                log_path=self._logs_dir / f"{spec.name}.log",
                env=self._env,
                cwd=REPO_ROOT,
            )
            process.start()
            self._running.append(process)
            process.wait_ready(spec.ready, timeout)

    def crashed(self) -> list[str]:
        return [p.name for p in self._running if not p.running()]

    def stop(self) -> None:
        for process in reversed(self._running):
            process.stop()
        self._running.clear()
