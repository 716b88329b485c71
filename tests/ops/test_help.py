"""Every operator command explains itself."""

from __future__ import annotations

import pytest

from bookme.cli import build_parser
from bookme.ops.commands import OPERATOR_COMMANDS


@pytest.mark.parametrize("command", sorted(OPERATOR_COMMANDS))
def test_help_explains_what_and_when(command, capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([command, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert f"bookme {command}" in text
    assert "Use it" in text or "--dry-run" in text
