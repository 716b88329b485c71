"""Stopping an API process without cutting requests: on SIGTERM/SIGINT the event streams end
first, then uvicorn's graceful shutdown waits for what is left.

uvicorn waits for every open connection before it runs the lifespan shutdown, and an event
stream stays open for minutes (``sse_max_seconds``), so a process stopped by an operator (or
by the restore fault, SIGKILL after 15 s) would be killed holding requests: 502s at the
balancer. The signal is hooked where uvicorn receives it, before that wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from types import FrameType

import structlog
import uvicorn
from fastapi import FastAPI

log = structlog.get_logger(__name__)


class DrainingServer(uvicorn.Server):
    """uvicorn, which ends the app's event streams as soon as it is asked to stop."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            # uvicorn re-raises the stop signal once it has shut down (for a host program);
            # this process is the program, and a stop that drained everything exits 0.
            self._captured_signals.clear()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler interrupts the loop's own code: the streams are woken from the loop.
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(drain, self._app)
        super().handle_exit(sig, frame)


def drain(app: FastAPI) -> None:
    """End the app's open event streams and refuse readiness (nothing to do before startup)."""
    state = getattr(app.state, "bookme", None)
    feed = None if state is None else state.changes
    if feed is None or feed.draining:
        return
    log.info("api draining", streams=feed.streams)
    feed.close_all()
