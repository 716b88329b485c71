"""One readable stream from many log files: each line prefixed with the part that wrote it."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import TextIO


class LogTail:
    """Follow log files from their current end and echo new lines as ``name | line``."""

    def __init__(self, sources: dict[str, Path], out: TextIO = sys.stdout) -> None:
        self._sources = sources
        self._out = out
        self._stop = threading.Event()
        self._offsets: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, name="log-tail", daemon=True)
        width = max((len(name) for name in sources), default=0)
        self._prefix = {name: f"{name:<{width}} | " for name in sources}

    def start(self) -> None:
        # "From their current end" means at start(): a line written right after it must show,
        # however late the thread first runs.
        self._offsets = {name: _size(path) for name, path in self._sources.items()}
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        offsets = self._offsets
        while not self._stop.is_set():
            for name, path in self._sources.items():
                offsets[name] = self._echo(name, path, offsets[name])
            time.sleep(0.2)

    def _echo(self, name: str, path: Path, offset: int) -> int:
        size = _size(path)
        if size < offset:  # truncated or replaced
            offset = 0
        if size == offset:
            return offset
        with path.open("rb") as handle:
            handle.seek(offset)
            chunk = handle.read(size - offset)
        # Only whole lines; a partial last line waits for the next round.
        complete, _, _ = chunk.rpartition(b"\n")
        if not complete:
            return offset
        for line in complete.decode(errors="replace").splitlines():
            self._out.write(self._prefix[name] + line + "\n")
        self._out.flush()
        return offset + len(complete) + 1


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
