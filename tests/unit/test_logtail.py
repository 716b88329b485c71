"""The combined log stream shows whole new lines, prefixed, from every file."""

from __future__ import annotations

import io
import time

from bookme.embedded.logtail import LogTail


def _wait_until(predicate, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_new_lines_are_prefixed_and_old_ones_skipped(tmp_path):
    worker, api = tmp_path / "worker.log", tmp_path / "api.log"
    worker.write_text("old line\n")
    out = io.StringIO()
    tail = LogTail({"worker": worker, "api": api}, out)
    tail.start()
    try:
        with worker.open("a") as f:
            f.write("started\npart")
        api.write_text("listening\n")
        _wait_until(lambda: "listening" in out.getvalue() and "started" in out.getvalue())
        assert "old line" not in out.getvalue()
        assert "part" not in out.getvalue()
        with worker.open("a") as f:
            f.write("ial\n")
        _wait_until(lambda: "partial" in out.getvalue())
    finally:
        tail.stop()
    lines = out.getvalue().splitlines()
    assert "worker | started" in lines
    assert "api    | listening" in lines
    assert "worker | partial" in lines
