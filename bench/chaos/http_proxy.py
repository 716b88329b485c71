"""The reverse proxy in front of the chaos run's API replicas, as a load balancer would be.

Round-robin over the upstreams. An upstream is marked dead for `DEAD_SECONDS` when it refuses a
connection (the request goes to the next one: it was not sent, so any method may be retried, as
nginx's ``proxy_next_upstream error`` does) and when its readiness probe (``/health/ready``,
every `PROBE_SECONDS`) fails or hangs, as a load balancer's health check takes a replica that
cannot reach Postgres or Temporal out of rotation. With every upstream dead, each is tried. A request whose upstream dies after it
was sent gets a 502: the proxy cannot know whether it was acted on. An operator stopping a
replica first takes it out of rotation (`drain`: no new request goes to it, and its requests in
flight are waited for; an event stream is not waited for, the API ends it when stopped) and puts
it back when it is up again (`undrain`). Each request gets its own
upstream connection (``Connection: close``) and the answer is streamed back as it comes, so
Server-Sent Events pass through unbuffered; the client's connection closes with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field

import httpx
import structlog

from bench.chaos.tcp_proxy import Handlers

log = structlog.get_logger(__name__)

CHUNK = 64 * 1024
DEAD_SECONDS = 2.0
PROBE_SECONDS = 1.0
PROBE_TIMEOUT = 2.0
# How long `drain` waits for a replica's requests (a booking's creation waits up to 10 s).
DRAIN_SECONDS = 15.0
EVENT_STREAM = b"text/event-stream"
HEAD_LIMIT = 64 * 1024


def _canned(status: bytes, body: bytes, *extra: bytes) -> bytes:
    """A whole answer of the proxy's own (its length counted, not typed)."""
    head = [b"HTTP/1.1 " + status, b"content-type: application/json", *extra]
    head += [b"content-length: %d" % len(body), b"connection: close"]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


BAD_GATEWAY = _canned(b"502 Bad Gateway", b'{"code":"bad_gateway","detail":"no upstream answer"}')
UNAVAILABLE = _canned(
    b"503 Service Unavailable",
    b'{"code":"no_upstream","detail":"every upstream down"}',
    b"retry-after: 1",
)


@dataclass
class Upstream:
    port: int
    dead_until: float = 0.0
    drained: bool = False
    in_flight: int = 0  # requests sent to it and not answered yet (event streams not counted)


@dataclass
class ReverseProxy:
    """127.0.0.1:<port> in front of 127.0.0.1:<each upstream port>."""

    upstream_ports: list[int]
    port: int = 0
    health_path: str | None = "/health/ready"
    requests: int = 0
    retried: int = 0
    _upstreams: list[Upstream] = field(init=False)
    _turn: itertools.cycle[int] = field(init=False)
    _server: asyncio.Server | None = None
    _handlers: Handlers = field(default_factory=Handlers)
    _prober: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self._upstreams = [Upstream(port) for port in self.upstream_ports]
        self._turn = itertools.cycle(range(len(self._upstreams)))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.health_path is not None:
            self._prober = asyncio.create_task(self._probe())

    async def _probe(self) -> None:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT) as http:
            while True:
                for upstream in self._upstreams:
                    try:
                        answer = await http.get(
                            f"http://127.0.0.1:{upstream.port}{self.health_path}"
                        )
                        ready = answer.status_code == 200
                    except httpx.HTTPError:
                        ready = False
                    if not ready:
                        upstream.dead_until = time.monotonic() + DEAD_SECONDS
                await asyncio.sleep(PROBE_SECONDS)

    def out_of_rotation(self) -> list[int]:
        """The upstream ports marked dead right now, or drained."""
        now = time.monotonic()
        return [u.port for u in self._upstreams if u.dead_until > now or u.drained]

    async def drain(self, port: int, within: float = DRAIN_SECONDS) -> int:
        """Send the upstream at `port` no new request, then wait up to `within` seconds for the
        requests it holds; how many it still holds (0: it can be stopped without a 502)."""
        upstream = self._upstream(port)
        upstream.drained = True
        deadline = time.monotonic() + within
        while upstream.in_flight and time.monotonic() < deadline:  # noqa: ASYNC110 - a counter
            await asyncio.sleep(0.05)
        return upstream.in_flight

    def undrain(self, port: int) -> None:
        """Put the upstream at `port` back in rotation."""
        self._upstream(port).drained = False

    def _upstream(self, port: int) -> Upstream:
        return next(u for u in self._upstreams if u.port == port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            await asyncio.gather(self._prober, return_exceptions=True)
        await self._handlers.cancel_all(self._server)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = self._handlers.add_current()
        try:
            request = await _read_request(reader)
            if request is not None:
                self.requests += 1
                await self._forward(request, writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
            self._handlers.tasks.discard(task)

    async def _connect(
        self,
    ) -> tuple[Upstream, asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A connection to the next live upstream; a refusing one is marked dead, the next tried.
        A drained upstream is never tried."""
        for attempt in range(2 * len(self._upstreams)):
            upstream = self._upstreams[next(self._turn)]
            if upstream.drained:
                continue
            if upstream.dead_until > time.monotonic() and attempt < len(self._upstreams):
                continue
            try:
                connection = await asyncio.open_connection("127.0.0.1", upstream.port)
            except OSError:
                upstream.dead_until = time.monotonic() + DEAD_SECONDS
                self.retried += 1
                continue
            return (upstream, *connection)
        return None

    async def _forward(self, request: bytes, writer: asyncio.StreamWriter) -> None:
        connection = await self._connect()
        if connection is None:
            writer.write(UNAVAILABLE)
            await writer.drain()
            return
        upstream, up_reader, up_writer = connection
        answered = False
        upstream.in_flight += 1
        holding = True
        try:
            up_writer.write(request)
            await up_writer.drain()
            while chunk := await up_reader.read(CHUNK):
                if not answered and EVENT_STREAM in chunk.partition(b"\r\n\r\n")[0].lower():
                    upstream.in_flight -= 1  # a stream: open for minutes, not waited for
                    holding = False
                answered = True
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            up_writer.close()
            if holding:
                upstream.in_flight -= 1
        if not answered:
            writer.write(BAD_GATEWAY)
            await writer.drain()


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One request, its head rewritten to close after the answer; None on a closed connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    if len(head) > HEAD_LIMIT:
        return None
    lines = head[:-4].split(b"\r\n")
    kept = [lines[0]]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        lowered = name.strip().lower()
        if lowered in (b"connection", b"keep-alive", b"proxy-connection"):
            continue
        if lowered == b"content-length":
            length = int(value.strip())
        kept.append(line)
    kept.append(b"connection: close")
    body = await reader.readexactly(length) if length else b""
    return b"\r\n".join(kept) + b"\r\n\r\n" + body
