"""Embedded services started as root hand their files to an unprivileged service user.

(Not in test_services.py: that module defines a workflow, and the sandbox re-imports it.)
"""

from __future__ import annotations

from bookme.embedded.postgres import open_path_to


def test_the_path_to_the_server_binaries_is_opened_to_the_service_user(tmp_path):
    """A checkout under a private directory (``mktemp -d`` is 0700) hid the venv's initdb from
    the unprivileged user Postgres runs as under root: every test needing Postgres failed."""
    private = tmp_path / "private"
    binary = private / "x" / ".venv" / "pginstall" / "bin" / "initdb"
    binary.parent.mkdir(parents=True)
    binary.touch()
    private.chmod(0o700)
    open_path_to(binary)
    for parent in binary.parents:
        if parent == tmp_path:
            break
        assert parent.stat().st_mode & 0o005 == 0o005, parent
