"""A WebSocket proxy in front of anvil that can drop every connection or refuse new ones."""

from __future__ import annotations

import asyncio
import contextlib

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import Server, ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response


class DroppingWsProxy:
    """Pumps frames both ways; ``drop()`` kills live sockets, ``refusing`` answers 503."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.refusing = False
        self.connections = 0
        self._server: Server | None = None
        self._live: set[ServerConnection] = set()
        self.url = ""

    async def start(self) -> str:
        self._server = await websockets.serve(
            self._serve, "127.0.0.1", 0, process_request=self._gate, compression=None
        )
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self.url

    def _gate(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.refusing:
            return connection.respond(503, "down for maintenance\n")
        return None

    async def _serve(self, downstream: ServerConnection) -> None:
        self.connections += 1
        self._live.add(downstream)
        try:
            async with websockets.connect(self.upstream, compression=None) as upstream:
                await asyncio.gather(
                    self._pump(downstream, upstream), self._pump(upstream, downstream)
                )
        except ConnectionClosed:
            pass
        finally:
            self._live.discard(downstream)

    @staticmethod
    async def _pump(
        source: ServerConnection | ClientConnection, sink: ServerConnection | ClientConnection
    ) -> None:
        try:
            async for message in source:
                await sink.send(message)
        finally:
            with contextlib.suppress(Exception):
                await sink.close()

    async def drop(self) -> None:
        """Close every live client socket abruptly (as a dying load balancer would)."""
        for connection in list(self._live):
            connection.transport.abort()

    async def stop(self) -> None:
        await self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
