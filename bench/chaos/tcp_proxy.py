"""A TCP proxy that can partition: the chaos run puts one in front of Postgres for each worker
replica and one in front of Temporal for each API replica.

A partition is not a refusal: while it lasts, bytes already on their way stay where they are and
a new connection is accepted but goes nowhere, so a client sees a hang (its own timeouts decide
what happens), as when packets are dropped between two hosts. When it heals, every held byte is
delivered in order, as TCP's retransmissions would, and held connections reach the server.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger(__name__)

CHUNK = 64 * 1024


@dataclass
class Handlers:
    """A proxy's running connection handlers, to close them all at once."""

    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def add_current(self) -> asyncio.Task[None]:
        task: asyncio.Task[None] | None = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        return task

    async def cancel_all(self, server: asyncio.Server | None = None) -> None:
        if server is not None:
            server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@dataclass
class TcpFaultProxy:
    """Forwards 127.0.0.1:<port> to `target_host`:`target_port` unless partitioned."""

    name: str
    target_host: str
    target_port: int
    port: int = 0
    _flowing: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None
    _handlers: Handlers = field(default_factory=Handlers)

    async def start(self) -> None:
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def partitioned(self) -> bool:
        return not self._flowing.is_set()

    def partition(self) -> None:
        log.info("tcp_proxy.partitioned", proxy=self.name)
        self._flowing.clear()

    def heal(self) -> None:
        log.info("tcp_proxy.healed", proxy=self.name)
        self._flowing.set()

    async def drop_connections(self) -> None:
        """Close every open connection (as a server that dies does); the proxy still listens."""
        await self._handlers.cancel_all()

    async def stop(self) -> None:
        self._flowing.set()
        await self._handlers.cancel_all(self._server)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = self._handlers.add_current()
        try:
            await self._flowing.wait()  # a partition: the connection goes nowhere until it heals
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    self.target_host, self.target_port
                )
            except OSError:
                return  # the server is down: the client sees its connection closed
            try:
                await asyncio.gather(
                    self._pump(reader, up_writer),
                    self._pump(up_reader, writer),
                    return_exceptions=True,
                )
            finally:
                up_writer.close()
        except asyncio.CancelledError:
            pass  # dropped or stopped: the connection just closes
        finally:
            writer.close()
            self._handlers.tasks.discard(task)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(CHUNK):
                await self._flowing.wait()  # held, in order, while partitioned
                sink.write(chunk)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                sink.write_eof() if sink.can_write_eof() else sink.close()
