"""An unreachable dependency is one line on stderr and exit code 2, not a traceback."""

from __future__ import annotations

import uuid

from bookme.cli import main
from bookme.embedded.process import free_port


def test_unreachable_temporal_is_exit_2_with_one_line(monkeypatch, capsys):
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("BOOKME_TEMPORAL_ADDRESS", address)
    code = main(["replay", str(uuid.uuid4())])
    err = capsys.readouterr().err
    assert code == 2
    assert f"bookme replay: Temporal at {address} is unreachable" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_unreachable_postgres_is_exit_2(monkeypatch, capsys):
    url = f"postgresql+asyncpg://postgres:hunter2@127.0.0.1:{free_port()}/none"
    monkeypatch.setenv("BOOKME_DATABASE_URL", url)
    code = main(["retention", "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2
    assert "bookme retention: Postgres at" in err
    assert "hunter2" not in err
