"""A child process we own: own log file, readiness wait, and no orphans when we die."""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

_PR_SET_PDEATHSIG = 1


class ServiceStartError(RuntimeError):
    """An embedded service did not become ready; the message names its log file."""


def _die_with_parent() -> None:
    # Linux: the kernel sends SIGTERM to the child when the process that started it dies,
    # even by SIGKILL, so a killed test run or `make dev` leaves no server behind.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def run_as_kwargs(user: str | None) -> dict[str, Any]:
    """subprocess kwargs that drop to ``user`` with its own group, not the caller's groups."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


@dataclass
class ManagedProcess:
    """One server process: started with its output in ``log_path``, stopped with SIGTERM then SIGKILL."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    run_as: str | None = None
    stop_signal: int = signal.SIGTERM
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self._proc = subprocess.Popen(
                list(self.argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                **run_as_kwargs(self.run_as),
                start_new_session=True,  # Ctrl-C goes to us; we stop children in order
                preexec_fn=_die_with_parent,
            )
        log.info("service.started", service=self.name, pid=self._proc.pid, log=str(self.log_path))

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait_ready(self, check: Callable[[], bool], timeout: float, interval: float = 0.1) -> None:
        """Poll ``check`` until it passes; fail fast if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise ServiceStartError(
                    f"{self.name} exited with code {self._proc.returncode if self._proc else '?'}"
                    f" before it was ready; see {self.log_path}:\n{self.tail()}"
                )
            if check():
                return
            time.sleep(interval)
        self.stop()
        raise ServiceStartError(
            f"{self.name} not ready after {timeout:.0f}s; see {self.log_path}:\n{self.tail()}"
        )

    def stop(self, timeout: float = 15.0) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, self.stop_signal)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("service.kill", service=self.name, pid=proc.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.info("service.stopped", service=self.name, code=proc.returncode)

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
