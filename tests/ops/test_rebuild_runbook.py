"""The runbook's restore procedure names the commands and output the restore test exercises."""

from __future__ import annotations

import io
import re
import shlex
import textwrap
from pathlib import Path

from bookme.cli import build_parser
from bookme.ops.rebuild import RebuildFailure, RebuildReport
from bookme.ops.rebuild_backup import RESTORE_FLAGS

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"


def _section() -> str:
    text = RUNBOOK.read_text(encoding="utf-8")
    start = text.index("## Restore from a backup")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _blocks(section: str) -> list[str]:
    """The code blocks (indented under a list item or not)."""
    return [
        textwrap.dedent(block).strip()
        for block in re.findall(r"```\n(.*?)```", section, flags=re.S)
    ]


def test_the_restore_line_is_the_one_the_test_restores_with():
    (line,) = [b for b in _blocks(_section()) if b.startswith("pg_restore")]
    assert shlex.split(line)[1 : 1 + len(RESTORE_FLAGS)] == list(RESTORE_FLAGS)


def test_the_commands_of_the_procedure_parse():
    section = _section()
    for command in ("bookme migrate", "bookme rebuild", "bookme reconcile --full --wait"):
        assert f"`{command}" in section, command
        build_parser().parse_args(shlex.split(command)[1:])


def test_the_sample_output_has_the_lines_rebuild_prints():
    (sample,) = [b for b in _blocks(_section()) if b.startswith("rebuild:")]
    report = RebuildReport(
        restored={"bookings": 1},
        failures=[RebuildFailure(workflow_id="booking-x", reason="replay failed: x")],
    )
    out = io.StringIO()
    report.write(out)
    heads = [line.split(":")[0] for line in out.getvalue().splitlines() if not line[0].isspace()]
    assert heads == [line.split(":")[0] for line in sample.splitlines()]
