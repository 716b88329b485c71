"""The reverse proxy's drain, as an operator takes a replica out before stopping it (real
sockets, tiny upstreams): no new request reaches it, the one it holds is answered, an event
stream is not waited for, and with every replica drained the answer is 503 with Retry-After."""

from __future__ import annotations

import asyncio

import httpx

from bench.chaos.http_proxy import ReverseProxy
from tests.chaos.test_proxies import Handler, _answering, _port, _server, _streaming


def _held(received: asyncio.Event, release: asyncio.Event) -> Handler:
    """Answers "held" once the test releases it."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        received.set()
        await release.wait()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nheld")
        await writer.drain()
        writer.close()

    return handler


async def test_a_drained_replica_gets_nothing_new_and_answers_what_it_holds() -> None:
    received, release = asyncio.Event(), asyncio.Event()
    held, other = await _server(_held(received, release)), await _server(_answering(b"other"))
    proxy = ReverseProxy([_port(held), _port(other)], health_path=None)
    await proxy.start()
    try:
        async with httpx.AsyncClient(base_url=proxy.url, timeout=10) as http:
            in_flight = asyncio.create_task(http.post("/bookings", json={}))  # to `held`
            await received.wait()
            draining = asyncio.create_task(proxy.drain(_port(held)))
            answers = [await http.get("/bookings") for _ in range(4)]
            assert [(r.status_code, r.text) for r in answers] == [(200, "other")] * 4
            assert not draining.done()  # still waiting for the request `held` holds
            release.set()
            assert await draining == 0
            assert ((await in_flight).status_code, (await in_flight).text) == (200, "held")
            assert proxy.out_of_rotation() == [_port(held)]

            assert await proxy.drain(_port(other)) == 0
            refused = await http.get("/bookings")
            assert refused.status_code == 503
            assert refused.json()["code"] == "no_upstream"
            assert int(refused.headers["retry-after"]) >= 1

            proxy.undrain(_port(held))
            back = [await http.get("/bookings") for _ in range(2)]
            assert [(r.status_code, r.text) for r in back] == [(200, "held")] * 2
    finally:
        await proxy.stop()
        held.close()
        other.close()


async def test_an_open_event_stream_is_not_waited_for() -> None:
    streaming = await _server(_streaming)
    proxy = ReverseProxy([_port(streaming)], health_path=None)
    await proxy.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        writer.write(b"GET /stream HTTP/1.1\r\nhost: api\r\n\r\n")
        await reader.readuntil(b"data: first\n\n")
        # The stream is still open (its upstream writes again later), yet nothing is held.
        assert await proxy.drain(_port(streaming), within=1.0) == 0
    finally:
        writer.close()
        await proxy.stop()
        streaming.close()
