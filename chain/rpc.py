"""JSON-RPC transports (HTTP via aiohttp, WebSocket via websockets) and error classification.

A transport talks to one provider and turns every failure into a `ProviderError`
(retry elsewhere) or an `RpcError` (the node's answer). Failover lives in `chain.client`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
from collections.abc import AsyncIterator
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from chain.errors import (
    ExecutionReverted,
    LogQueryTooLarge,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    RpcError,
)
from chain.hexutil import to_bytes, to_int

# get_logs answers can be large; a cap still bounds memory if a provider misbehaves.
WS_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
HTTP_CONNECT_TIMEOUT_SECONDS = 5.0
HTTP_MAX_CONNECTIONS = 32
_JSON = {"Content-Type": "application/json"}

_RATE_LIMIT = re.compile(
    r"rate.?limit|too many requests|request limit|daily request count|exceeded .*"
    r"(capacity|quota|compute units|credits|requests)|throughput",
    re.IGNORECASE,
)
_LOG_RANGE = re.compile(
    r"query returned more than|block range|response size|range is too (large|wide)|"
    r"too many (results|logs|blocks)|logs? (response|result)s? .*(limit|exceed)|"
    r"limited to a .*range|max(imum)? .*(results|range|blocks)",
    re.IGNORECASE,
)
_SUGGESTED_RANGE = re.compile(r"\[\s*(0x[0-9a-fA-F]+)\s*,\s*(0x[0-9a-fA-F]+)\s*\]")


def mask_url(url: str) -> str:
    """The URL without credentials: userinfo, path keys and query strings are hidden."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    path = "" if parts.path in ("", "/") and not parts.query else "/***"
    return f"{parts.scheme}://{netloc}{path}"


def classify_rpc_error(method: str, error: object, provider: str) -> Exception:
    """The exception for a JSON-RPC error object (rate limits become provider errors)."""
    if not isinstance(error, dict):
        return ProviderUnavailable(f"malformed error object from {method}", provider=provider)
    code = error.get("code")
    code = code if isinstance(code, int) else -1
    message = str(error.get("message", ""))
    data = error.get("data")
    if method == "eth_getLogs" and _LOG_RANGE.search(message):
        low, high = _suggested_range(message, data)
        return LogQueryTooLarge(
            code, message, data, suggested_from_block=low, suggested_to_block=high
        )
    if code in (429, -32029) or _RATE_LIMIT.search(message):
        return RateLimited(f"{method}: rate limited ({code}: {message})", provider=provider)
    if code == 3 or message.lower().startswith(("execution reverted", "reverted")):
        return ExecutionReverted(code, message, data, revert_data=_revert_bytes(data))
    return RpcError(code, message, data)


def _suggested_range(message: str, data: object) -> tuple[int | None, int | None]:
    if isinstance(data, dict) and "from" in data and "to" in data:
        try:
            return to_int(data["from"]), to_int(data["to"])
        except (TypeError, ValueError):
            pass
    match = _SUGGESTED_RANGE.search(message)
    if match:
        return int(match.group(1), 16), int(match.group(2), 16)
    return None, None


def _revert_bytes(data: object) -> bytes:
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str):
        try:
            return to_bytes(data)
        except ValueError:
            return b""
    return b""


def _result(payload: object, method: str, provider: str) -> Any:
    if not isinstance(payload, dict):
        raise ProviderUnavailable(f"{method}: response is not a JSON object", provider=provider)
    if payload.get("error") is not None:
        raise classify_rpc_error(method, payload["error"], provider)
    if "result" not in payload:
        raise ProviderUnavailable(f"{method}: response without result", provider=provider)
    return payload["result"]


class Transport(Protocol):
    """One provider's JSON-RPC endpoint."""

    label: str

    async def request(self, method: str, params: list[Any], limit: float | None = None) -> Any:
        """One call; ``limit`` seconds once a connection slot is held (queueing is not timed)."""
        ...

    async def close(self) -> None: ...


class HttpTransport:
    """JSON-RPC over HTTP(S) with a pooled aiohttp session (opened on first use)."""

    def __init__(
        self, url: str, *, label: str | None = None, max_connections: int = HTTP_MAX_CONNECTIONS
    ) -> None:
        self.label = label or mask_url(url)
        self._url = url
        self._ids = itertools.count(1)
        self._max_connections = max_connections
        # Our own queue in front of the pool: time spent waiting for a free connection is
        # our backlog, not the provider's slowness, so the per-call limit starts after it.
        self._slots = asyncio.Semaphore(max_connections)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=HTTP_CONNECT_TIMEOUT_SECONDS
                ),
            )
        return self._session

    async def request(self, method: str, params: list[Any], limit: float | None = None) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        data = json.dumps(body).encode()
        try:
            async with (
                self._slots,
                asyncio.timeout(limit),
                self._open().post(self._url, data=data, headers=_JSON) as response,
            ):
                status = response.status
                raw = await response.read()
        except TimeoutError:
            raise ProviderTimeout(
                f"{method}: no answer in {limit:g}s", provider=self.label
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            # The exception text can contain the URL; keep only its type.
            raise ProviderUnavailable(
                f"{method}: {type(exc).__name__}", provider=self.label
            ) from None
        if status == 429:
            raise RateLimited(f"{method}: HTTP 429", provider=self.label)
        if status != 200:
            raise ProviderUnavailable(f"{method}: HTTP {status}", provider=self.label)
        try:
            payload = json.loads(raw)
        except ValueError:
            raise ProviderUnavailable(f"{method}: invalid JSON", provider=self.label) from None
        return _result(payload, method, self.label)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class Subscription:
    """An eth_subscribe stream; iteration ends with ProviderUnavailable when the socket drops."""

    _CLOSED = object()

    def __init__(self, transport: WebSocketTransport, subscription_id: str) -> None:
        self.id = subscription_id
        self.provider = transport.label
        self._transport = transport
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._closed = False

    def _push(self, item: object) -> None:
        self._queue.put_nowait(item)

    def _end(self) -> None:
        self._queue.put_nowait(self._CLOSED)

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            item = await self._queue.get()
            if item is self._CLOSED:
                if self._closed:
                    return
                raise ProviderUnavailable("subscription connection closed", provider=self.provider)
            if isinstance(item, dict):
                yield item

    async def close(self) -> None:
        """Unsubscribe (best effort) and end iteration."""
        if self._closed:
            return
        self._closed = True
        self._transport._subscriptions.pop(self.id, None)
        with contextlib.suppress(ProviderError, RpcError):
            await self._transport.request("eth_unsubscribe", [self.id], 5.0)
        self._end()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class WebSocketTransport:
    """JSON-RPC over one WebSocket; requests matched to responses by id, reconnects lazily."""

    def __init__(self, url: str, *, label: str | None = None, open_timeout: float = 10.0) -> None:
        self.label = label or mask_url(url)
        self._url = url
        self._open_timeout = open_timeout
        self._ids = itertools.count(1)
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._connect_lock = asyncio.Lock()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._subscriptions: dict[str, Subscription] = {}
        # Notifications can beat the eth_subscribe answer to our code; hold them briefly.
        self._early: dict[str, list[object]] = {}

    async def _connection(self) -> ClientConnection:
        ws = self._ws
        if ws is not None:
            return ws
        async with self._connect_lock:
            if self._ws is not None:
                return self._ws
            try:
                ws = await websockets.connect(
                    self._url,
                    open_timeout=self._open_timeout,
                    max_size=WS_MAX_MESSAGE_BYTES,
                    max_queue=None,
                    compression=None,
                    ping_interval=20,
                    ping_timeout=20,
                )
            except InvalidStatus as exc:
                status = exc.response.status_code
                error_type = RateLimited if status == 429 else ProviderUnavailable
                raise error_type(
                    f"WebSocket handshake: HTTP {status}", provider=self.label
                ) from None
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                raise ProviderUnavailable(
                    f"WebSocket connect: {type(exc).__name__}", provider=self.label
                ) from None
            self._ws = ws
            self._reader = asyncio.create_task(self._read(ws), name=f"ws-reader {self.label}")
            return ws

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                try:
                    payload = json.loads(message)
                except ValueError:
                    continue
                for item in payload if isinstance(payload, list) else [payload]:
                    self._dispatch(item)
        except ConnectionClosed:
            pass
        finally:
            if self._ws is ws:
                self._ws = None
            failure = ProviderUnavailable("WebSocket connection closed", provider=self.label)
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(failure)
            self._pending.clear()
            for subscription in list(self._subscriptions.values()):
                subscription._end()
            self._subscriptions.clear()
            self._early.clear()

    def _dispatch(self, item: object) -> None:
        if not isinstance(item, dict):
            return
        if item.get("method") == "eth_subscription":
            params = item.get("params") or {}
            subscription = self._subscriptions.get(str(params.get("subscription")))
            if subscription is not None:
                subscription._push(params.get("result"))
            elif len(self._early) < 64:
                self._early.setdefault(str(params.get("subscription")), []).append(
                    params.get("result")
                )
            return
        request_id = item.get("id")
        future = self._pending.get(request_id) if isinstance(request_id, int) else None
        if future is not None and not future.done():
            future.set_result(item)

    async def request(self, method: str, params: list[Any], limit: float | None = None) -> Any:
        try:
            async with asyncio.timeout(limit):
                payload = await self._exchange(method, params)
        except TimeoutError:
            raise ProviderTimeout(
                f"{method}: no answer in {limit:g}s", provider=self.label
            ) from None
        return _result(payload, method, self.label)

    async def _exchange(self, method: str, params: list[Any]) -> Any:
        ws = await self._connection()
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
            try:
                await ws.send(json.dumps(message))
            except ConnectionClosed:
                raise ProviderUnavailable(
                    f"{method}: WebSocket closed", provider=self.label
                ) from None
            return await future
        finally:
            self._pending.pop(request_id, None)

    async def subscribe(self, kind: str, *params: Any, limit: float | None = None) -> Subscription:
        """Start an eth_subscribe stream (newHeads, logs...) on this socket."""
        subscription_id = await self.request("eth_subscribe", [kind, *params], limit)
        subscription = Subscription(self, str(subscription_id))
        for item in self._early.pop(subscription.id, []):
            subscription._push(item)
        self._subscriptions[subscription.id] = subscription
        return subscription

    async def close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None


def make_transport(url: str, *, label: str | None = None) -> HttpTransport | WebSocketTransport:
    """The transport for a URL's scheme (ws/wss or http/https)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("ws", "wss"):
        return WebSocketTransport(url, label=label)
    if scheme in ("http", "https"):
        return HttpTransport(url, label=label)
    raise ValueError(f"unsupported RPC URL scheme {scheme!r} in {mask_url(url)}")
