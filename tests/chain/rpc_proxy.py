"""Tiny HTTP JSON-RPC servers for failover tests: a scripted fake and a faulty proxy to anvil."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

_REASONS = {200: "OK", 401: "Unauthorized", 429: "Too Many Requests", 500: "Internal Server Error"}


@dataclass(frozen=True)
class Reply:
    """A raw HTTP answer (status + body) instead of a JSON-RPC result."""

    status: int
    body: bytes = b""


class _HttpRpcServer:
    """HTTP/1.1 keep-alive loop on a free loopback port; subclasses answer each request."""

    def __init__(self, path: str = "") -> None:
        self.path = path
        self.requests = 0
        self.url = ""
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}{self.path}"
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # Connections stuck in a hanging answer would keep wait_closed() forever.
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()

    async def _answer(self, body: bytes) -> tuple[int, bytes]:
        raise NotImplementedError

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                body = await reader.readexactly(length)
                self.requests += 1
                status, payload = await self._answer(body)
                writer.write(
                    f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._handlers.discard(task)
            with contextlib.suppress(Exception):
                writer.close()


Handler = Callable[[str, list[Any]], Any | Awaitable[Any]]


class ScriptedRpcServer(_HttpRpcServer):
    """Answers with ``handler(method, params)``: a result, ``{"error": ...}`` or a `Reply`."""

    def __init__(self, name: str, handler: Handler, path: str = "") -> None:
        super().__init__(path)
        self.name = name
        self.handler = handler
        self.calls: list[tuple[str, str]] = []

    async def _answer(self, body: bytes) -> tuple[int, bytes]:
        request = json.loads(body)
        self.calls.append((self.name, request["method"]))
        outcome = self.handler(request["method"], request["params"])
        if asyncio.iscoroutine(outcome):
            outcome = await outcome
        if isinstance(outcome, Reply):
            return outcome.status, outcome.body
        envelope: dict[str, Any] = {"jsonrpc": "2.0", "id": request["id"]}
        if isinstance(outcome, dict) and "error" in outcome:
            envelope.update(outcome)
        else:
            envelope["result"] = outcome
        return 200, json.dumps(envelope).encode()


class Mode(StrEnum):
    PASS = "pass"
    RATE_LIMIT = "429"
    SERVER_ERROR = "500"
    RPC_RATE_LIMIT = "rpc_rate_limit"
    FREEZE_HEAD = "freeze_head"
    HANG = "hang"


class FaultyRpcProxy(_HttpRpcServer):
    """Forwards to ``upstream`` unless ``mode`` says to fail."""

    def __init__(self, upstream: str) -> None:
        super().__init__()
        self.upstream = upstream
        self.mode = Mode.PASS
        self.frozen_head: int | None = None
        self._client = httpx.AsyncClient(timeout=30.0)

    async def stop(self) -> None:
        await super().stop()
        await self._client.aclose()

    async def _answer(self, body: bytes) -> tuple[int, bytes]:
        request = json.loads(body)
        mode = self.mode
        if mode is Mode.HANG:
            await asyncio.sleep(3600)
        if mode is Mode.RATE_LIMIT:
            return 429, b'{"error": "slow down"}'
        if mode is Mode.SERVER_ERROR:
            return 500, b"upstream exploded"
        if mode is Mode.RPC_RATE_LIMIT:
            error = {
                "code": -32005,
                "message": "daily request count exceeded, request rate limited",
            }
            return 200, json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": error}).encode()
        if mode is Mode.FREEZE_HEAD and request["method"] == "eth_blockNumber":
            assert self.frozen_head is not None
            answer = {"jsonrpc": "2.0", "id": request["id"], "result": hex(self.frozen_head)}
            return 200, json.dumps(answer).encode()
        response = await self._client.post(
            self.upstream, content=body, headers={"content-type": "application/json"}
        )
        return 200, response.content
