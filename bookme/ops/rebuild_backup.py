"""A logical backup and restore of one database with the embedded Postgres binaries.

What the restore-from-backup procedure is tested and rehearsed with (the test, the chaos
fault): ``pg_dump --format=custom`` and ``pg_restore --clean``, the commands the runbook shows.
A production database is backed up by its own provider's tooling; the rebuild after the restore
is the same.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from bookme.embedded.postgres import _bin_dir

# Drop and recreate every dumped object in one transaction (the runbook shows the same line).
RESTORE_FLAGS = ("--clean", "--if-exists", "--single-transaction", "--no-owner")


def _connection(database_url: str) -> list[str]:
    url = make_url(database_url)
    return [
        "-h",
        url.host or "127.0.0.1",
        "-p",
        str(url.port or 5432),
        "-U",
        url.username or "postgres",
        "-d",
        url.database or "postgres",
    ]


def _run(argv: list[str], password: str | None) -> None:
    env = None if password is None else {**os.environ, "PGPASSWORD": password}
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{Path(argv[0]).name} failed: {done.stderr.strip()}")


def dump(database_url: str, path: Path) -> None:
    """The whole database (schema and rows) into one custom-format archive."""
    password = make_url(database_url).password
    argv = [str(_bin_dir() / "pg_dump"), "--format=custom", "--file", str(path)]
    _run(argv + _connection(database_url), password)


def restore(database_url: str, path: Path) -> None:
    """Put the database back as it was in ``path``: every dumped object dropped and recreated,
    in one transaction (a failed restore leaves the database as it was)."""
    password = make_url(database_url).password
    argv = [str(_bin_dir() / "pg_restore"), *RESTORE_FLAGS]
    _run(argv + _connection(database_url) + [str(path)], password)
