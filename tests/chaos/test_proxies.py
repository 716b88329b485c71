"""The chaos run's proxies on real sockets: the TCP proxy's partition hangs and then delivers
in order; the reverse proxy balances, skips a dead replica, streams, and says 502 for a request
its replica died holding."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from bench.chaos.http_proxy import ReverseProxy
from bench.chaos.tcp_proxy import TcpFaultProxy

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _server(handler: Handler) -> asyncio.Server:
    return await asyncio.start_server(handler, "127.0.0.1", 0)


def _port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture
async def echo() -> AsyncIterator[asyncio.Server]:
    server = await _server(_echo)
    yield server
    server.close()


async def test_a_partition_hangs_both_ways_then_delivers_everything_in_order(
    echo: asyncio.Server,
) -> None:
    proxy = TcpFaultProxy("test", "127.0.0.1", _port(echo))
    await proxy.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"one")
        assert await asyncio.wait_for(reader.readexactly(3), 5) == b"one"
        proxy.partition()
        writer.write(b"two")
        late_reader, late_writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        late_writer.write(b"late")  # accepted, but it reaches nothing until the heal
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readexactly(3), 0.5)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(late_reader.readexactly(4), 0.3)
        writer.write(b"three")
        proxy.heal()
        assert await asyncio.wait_for(reader.readexactly(8), 5) == b"twothree"
        assert await asyncio.wait_for(late_reader.readexactly(4), 5) == b"late"
        writer.close()
        late_writer.close()
    finally:
        await proxy.stop()


def _answering(name: bytes) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(name), name))
        await writer.drain()
        writer.close()

    return handler


async def _streaming(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: first\n\n")
    await writer.drain()
    await asyncio.sleep(5.0)
    writer.write(b"data: second\n\n")
    await writer.drain()
    writer.close()


async def _dying(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.transport.abort()


async def test_round_robin_skips_a_dead_replica_and_never_errs_for_it() -> None:
    a, b = await _server(_answering(b"a")), await _server(_answering(b"b"))
    proxy = ReverseProxy([_port(a), _port(b)], health_path=None)
    await proxy.start()
    try:
        async with httpx.AsyncClient(base_url=proxy.url) as http:
            assert sorted([(await http.get("/")).text for _ in range(4)]) == ["a", "a", "b", "b"]
            b.close()
            await b.wait_closed()
            answers = [await http.post("/x", json={"n": i}) for i in range(4)]
            assert [(r.status_code, r.text) for r in answers] == [(200, "a")] * 4
            a.close()
            await a.wait_closed()
            down = await http.get("/")
            assert down.status_code == 503
            assert down.headers["retry-after"]
    finally:
        await proxy.stop()


def _ready(ready: bool) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        status = b"503 Service Unavailable" if b"/health/ready" in head and not ready else b"200 OK"
        writer.write(
            b"HTTP/1.1 %s\r\ncontent-length: 1\r\n\r\n%s" % (status, b"y" if ready else b"n")
        )
        await writer.drain()
        writer.close()

    return handler


async def test_a_replica_failing_its_readiness_probe_is_out_of_rotation() -> None:
    ready, unready = await _server(_ready(True)), await _server(_ready(False))
    proxy = ReverseProxy([_port(unready), _port(ready)])
    await proxy.start()
    try:
        async with asyncio.timeout(10):
            while proxy.out_of_rotation() != [_port(unready)]:  # noqa: ASYNC110 - the prober's state
                await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=proxy.url) as http:
            assert {(await http.get("/bookings")).text for _ in range(6)} == {"y"}
    finally:
        await proxy.stop()
        ready.close()
        unready.close()


async def test_a_stream_passes_as_it_comes_and_a_replica_dying_mid_request_is_a_502() -> None:
    streaming, dying = await _server(_streaming), await _server(_dying)
    proxy = ReverseProxy([_port(streaming)], health_path=None)
    await proxy.start()
    try:
        async with (
            httpx.AsyncClient(base_url=proxy.url) as http,
            http.stream("GET", "/stream") as response,
        ):
            lines = response.aiter_lines()
            # Long before the upstream's second event: nothing is buffered on the way.
            assert await asyncio.wait_for(anext(lines), 4.0) == "data: first"
        proxy_dying = ReverseProxy([_port(dying)], health_path=None)
        await proxy_dying.start()
        async with httpx.AsyncClient(base_url=proxy_dying.url) as http:
            answer = await http.post("/bookings", json={})
        await proxy_dying.stop()
        assert answer.status_code == 502
        assert answer.json()["code"] == "bad_gateway"
    finally:
        await proxy.stop()
        streaming.close()
        dying.close()
