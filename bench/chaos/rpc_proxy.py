"""A fault-injecting JSON-RPC proxy (HTTP + WebSocket) in front of a real anvil.

Used by the chaos run (in front of the listener) and by the listener tests.

Every answer not faked comes from the node. Faults: lag (a lower head, null for later
blocks, logs cut at the lag), eth_getLogs limits (block span with a suggested range, result
count), made-up block hashes, HTTP 429, stalls, and dropped or silent WebSockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
import websockets

from bookme.embedded.process import free_port


@dataclass
class Faults:
    """What to get wrong right now; tests flip these while the proxy runs."""

    lag_head: int | None = None
    max_log_blocks: int | None = None
    max_log_results: int | None = None
    # Block number -> how many more header reads get a made-up hash.
    wrong_hash_reads: Counter[int] = field(default_factory=Counter)
    rate_limited: bool = False
    stalled: bool = False
    # WebSocket stays open but forwards no subscription notifications.
    silent_subscriptions: bool = False
    calls: Counter[str] = field(default_factory=Counter)


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


class FaultProxy:
    """Serves http://127.0.0.1:port and ws://127.0.0.1:port, forwarding to the node."""

    def __init__(self, http_upstream: str, ws_upstream: str) -> None:
        self.faults = Faults()
        self.port = free_port()
        self._http_upstream = http_upstream
        self._ws_upstream = ws_upstream
        self._client = httpx.AsyncClient(timeout=60.0)
        self._sockets: set[Any] = set()
        self._server = uvicorn.Server(
            uvicorn.Config(
                self._app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                ws="websockets-sansio",
                interface="asgi3",
            )
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        task = asyncio.create_task(self._server.serve())
        self._task = task
        while not self._server.started:
            if task.done():
                task.result()
                raise RuntimeError("proxy server exited during startup")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        await self.drop_websockets()
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        await self._client.aclose()

    async def drop_websockets(self) -> None:
        """Close every client WebSocket abruptly (subscriptions die with them)."""
        for upstream in list(self._sockets):
            with contextlib.suppress(Exception):
                await upstream.close()

    # --- the ASGI app ---

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await self._http(receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(receive, send)
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = json.loads(body)
        status, answer = await self._answer(request)
        payload = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _answer(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        method = request.get("method", "")
        params = request.get("params") or []
        self.faults.calls[method] += 1
        # Hangs while the fault lasts, like a wedged provider (tests flip the flag directly).
        while self.faults.stalled:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        if self.faults.rate_limited:
            return 429, _error(request.get("id"), 429, "Too Many Requests")
        refusal = self._refuse_logs(request, method, params)
        if refusal is not None:
            return 200, refusal
        response = await self._client.post(self._http_upstream, json=request)
        return 200, self._bend(method, params, response.json())

    async def _websocket(self, receive: Any, send: Any) -> None:
        message = await receive()
        assert message["type"] == "websocket.connect"
        if self.faults.rate_limited:
            await send({"type": "websocket.close", "code": 1013})
            return
        await send({"type": "websocket.accept"})
        async with websockets.connect(self._ws_upstream, max_size=None) as upstream:
            self._sockets.add(upstream)
            methods: dict[Any, tuple[str, list[Any]]] = {}

            async def downstream() -> None:
                async for raw in upstream:
                    answer = json.loads(raw)
                    if answer.get("method") == "eth_subscription":
                        if self.faults.silent_subscriptions:
                            continue
                    elif answer.get("id") in methods:
                        method, params = methods.pop(answer["id"])
                        answer = self._bend(method, params, answer)
                    await send({"type": "websocket.send", "text": json.dumps(answer)})

            pump = asyncio.create_task(downstream())
            try:
                while True:
                    incoming = await receive()
                    if incoming["type"] == "websocket.disconnect":
                        return
                    request = json.loads(incoming.get("text") or incoming.get("bytes"))
                    method = request.get("method", "")
                    self.faults.calls[method] += 1
                    if self.faults.stalled:
                        continue
                    refusal = self._refuse_logs(request, method, request.get("params") or [])
                    if refusal is not None:
                        await send({"type": "websocket.send", "text": json.dumps(refusal)})
                        continue
                    methods[request.get("id")] = (method, request.get("params") or [])
                    await upstream.send(json.dumps(request))
                    if pump.done():
                        break
            except websockets.ConnectionClosed:
                return  # dropped on purpose (drop_websockets): the client sees the close
            finally:
                self._sockets.discard(upstream)
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.close", "code": 1011})

    # --- faults applied to answers ---

    def _refuse_logs(self, request: dict[str, Any], method: str, params: list[Any]) -> Any:
        if method != "eth_getLogs" or self.faults.max_log_blocks is None:
            return None
        low, high = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
        limit = self.faults.max_log_blocks
        if high - low + 1 <= limit:
            return None
        return _error(
            request.get("id"),
            -32005,
            f"block range too large; try with this block range [{hex(low)}, {hex(low + limit - 1)}]",
        )

    def _bend(self, method: str, params: list[Any], answer: dict[str, Any]) -> dict[str, Any]:
        lag = self.faults.lag_head
        result = answer.get("result")
        if method == "eth_blockNumber" and lag is not None and isinstance(result, str):
            answer["result"] = hex(min(int(result, 16), lag))
        elif method == "eth_getBlockByNumber" and isinstance(result, dict):
            number = int(result["number"], 16)
            if lag is not None and number > lag:
                answer["result"] = None
            elif self.faults.wrong_hash_reads[number] > 0:
                self.faults.wrong_hash_reads[number] -= 1
                answer["result"] = {**result, "hash": "0x" + "ee" * 32}
        elif method == "eth_getLogs" and isinstance(result, list):
            cap = self.faults.max_log_results
            if cap is not None and len(result) > cap:
                return _error(answer.get("id"), -32005, f"query returned more than {cap} results")
            if lag is not None:
                answer["result"] = [e for e in result if int(e["blockNumber"], 16) <= lag]
        return answer
