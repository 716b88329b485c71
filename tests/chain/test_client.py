"""ChainClient retry/failover logic against scripted local JSON-RPC servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from bookme.embedded.process import free_port
from chain.client import ChainClient
from chain.errors import (
    AllProvidersFailed,
    ExecutionReverted,
    LogQueryTooLarge,
    RpcError,
)
from chain.rpc import mask_url
from tests.chain.rpc_proxy import Reply, ScriptedRpcServer

Handler = Callable[[str, list[Any]], Any]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    client: ChainClient
    registry: CollectorRegistry
    clock: FakeClock
    calls: list[tuple[str, str]]
    label_a: str
    label_b: str

    def hosts_called(self) -> list[str]:
        return [name for name, _ in self.calls]


@asynccontextmanager
async def scripted(a: Handler | None, b: Handler, **options: Any) -> AsyncIterator[Setup]:
    """Providers "a" (None = a dead port) and "b" behind URLs that carry credentials."""
    calls: list[tuple[str, str]] = []
    server_b = ScriptedRpcServer("b", b, path="/rpc?apikey=OTHERSECRET")
    server_b.calls = calls
    servers = [server_b]
    if a is None:
        url_a = f"http://127.0.0.1:{free_port()}/v2/SECRETKEY"
    else:
        server_a = ScriptedRpcServer("a", a, path="/v2/SECRETKEY")
        server_a.calls = calls
        servers.append(server_a)
        url_a = await server_a.start()
    url_b = await server_b.start()
    registry = CollectorRegistry()
    clock = FakeClock()
    defaults: dict[str, Any] = {
        "registry": registry,
        "clock": clock,
        "jitter": lambda: 0.5,
        "backoff_initial": 0.001,
        "backoff_max": 0.002,
        "cooldown_seconds": 30.0,
        "timeout": 2.0,
    }
    defaults.update(options)
    client = ChainClient([url_a, url_b], **defaults)
    try:
        yield Setup(client, registry, clock, calls, mask_url(url_a), mask_url(url_b))
    finally:
        await client.close()
        for server in servers:
            await server.stop()


def healthy(head: int = 10) -> Handler:
    def answer(method: str, params: list[Any]) -> Any:
        if method == "eth_chainId":
            return "0x7a69"
        if method == "eth_blockNumber":
            return hex(head)
        return "0x"

    return answer


def status(code: int) -> Handler:
    return lambda method, params: Reply(code, b"nope")


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_serves_from_the_preferred_provider_when_healthy():
    async with scripted(healthy(10), healthy(10)) as t:
        assert await t.client.block_number() == 10
        assert t.hosts_called() == ["a"]
        assert t.client.current_provider == t.label_a
        assert t.client.current_provider_index == 0
        assert (
            metric(
                t.registry,
                "bookme_rpc_requests_total",
                provider=t.label_a,
                method="eth_blockNumber",
            )
            == 1
        )


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (status(429), "rate_limited"),
        (status(503), "unavailable"),
        (status(401), "unavailable"),
        (
            lambda m, p: {"error": {"code": -32005, "message": "rate limit exceeded"}},
            "rate_limited",
        ),
        (lambda m, p: {"error": {"code": 429, "message": "Too Many Requests"}}, "rate_limited"),
        (lambda m, p: Reply(200, b"<html>bad gateway</html>"), "unavailable"),
        (None, "unavailable"),  # nothing listens on the port
    ],
)
async def test_fails_over_on_provider_errors(failure: Handler | None, kind: str):
    async with scripted(failure, healthy(42)) as t:
        with capture_logs() as logs:
            assert await t.client.block_number() == 42
        assert t.client.current_provider == t.label_b
        assert metric(t.registry, "bookme_rpc_errors_total", provider=t.label_a, kind=kind) == 1
        assert (
            metric(
                t.registry,
                "bookme_rpc_failovers_total",
                from_provider=t.label_a,
                to_provider=t.label_b,
            )
            == 1
        )
        assert metric(t.registry, "bookme_rpc_serving_provider_index") == 1
        failover = [entry for entry in logs if entry["event"] == "rpc_failover"]
        assert failover == [
            {
                "event": "rpc_failover",
                "log_level": "warning",
                "from_provider": t.label_a,
                "from_index": 0,
                "to_provider": t.label_b,
                "to_index": 1,
                "method": "eth_blockNumber",
                "reason": kind,
            }
        ]
    # Credentials in the URLs never reach a log line.
    assert "SECRET" not in repr(logs)
    assert t.hosts_called() == (["b"] if failure is None else ["a", "b"])


async def test_fails_over_on_timeout():
    async def stall(method: str, params: list[Any]) -> Any:
        await asyncio.sleep(30)

    async with scripted(stall, healthy(7), timeout=0.2) as t:
        assert await t.client.block_number() == 7
        assert (
            metric(t.registry, "bookme_rpc_errors_total", provider=t.label_a, kind="timeout") == 1
        )
        assert t.client.current_provider == t.label_b


async def test_queueing_for_a_connection_is_not_a_provider_timeout():
    async def slow(method: str, params: list[Any]) -> Any:
        await asyncio.sleep(0.05)
        return "0x5"

    # 640 calls through 32 connections queue for ~1 s in total (twice the per-call limit);
    # each call alone takes a tenth of the limit.
    async with scripted(slow, healthy(9), timeout=0.5) as t:
        results = await asyncio.gather(*(t.client.block_number() for _ in range(640)))
        assert set(results) == {5}
        assert t.client.current_provider == t.label_a
        assert (
            metric(t.registry, "bookme_rpc_errors_total", provider=t.label_a, kind="timeout") == 0
        )


async def test_node_errors_are_raised_not_failed_over():
    def revert(method: str, params: list[Any]) -> Any:
        return {"error": {"code": 3, "message": "execution reverted", "data": "0xdeadbeef"}}

    async with scripted(revert, healthy()) as t:
        with pytest.raises(ExecutionReverted) as caught:
            await t.client.call({"to": "0x" + "11" * 20, "data": b"\x01"})
        assert caught.value.revert_data == bytes.fromhex("deadbeef")
        assert t.hosts_called() == ["a"]
        assert t.client.current_provider == t.label_a

    def invalid(method: str, params: list[Any]) -> Any:
        return {"error": {"code": -32602, "message": "invalid params"}}

    async with scripted(invalid, healthy()) as t:
        with pytest.raises(RpcError) as error:
            await t.client.block_number()
        assert error.value.code == -32602
        assert t.hosts_called() == ["a"]


async def test_log_range_errors_carry_the_suggested_range():
    message = (
        "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block "
        "range. Based on your parameters, this block range should work: [0x10, 0x2f]"
    )

    def too_large(method: str, params: list[Any]) -> Any:
        return {"error": {"code": -32602, "message": message}}

    async with scripted(too_large, healthy()) as t:
        with pytest.raises(LogQueryTooLarge) as caught:
            await t.client.get_logs(from_block=0, to_block=1000)
        assert (caught.value.suggested_from_block, caught.value.suggested_to_block) == (0x10, 0x2F)
        assert t.hosts_called() == ["a"]


async def test_returns_to_the_preferred_provider_after_the_cooldown():
    broken = {"a": True}

    def flaky(method: str, params: list[Any]) -> Any:
        return Reply(503) if broken["a"] else healthy(11)(method, params)

    async with scripted(flaky, healthy(11), cooldown_seconds=30.0) as t:
        with capture_logs() as logs:
            await t.client.block_number()
            assert t.client.current_provider == t.label_b
            # During the cool-down the broken provider is not even tried.
            t.clock.now += 10
            await t.client.block_number()
            assert t.hosts_called() == ["a", "b", "b"]
            a_status, b_status = t.client.provider_status()
            assert (a_status.serving, a_status.cooling_down_seconds) == (False, 20.0)
            assert a_status.consecutive_failures == 1
            assert (b_status.serving, b_status.last_head) == (True, 11)
            broken["a"] = False
            t.clock.now += 25
            await t.client.block_number()
            assert t.client.current_provider == t.label_a
        assert t.hosts_called() == ["a", "b", "b", "a"]
        assert [e["event"] for e in logs if e["event"] == "rpc_provider_restored"] == [
            "rpc_provider_restored"
        ]
        assert metric(t.registry, "bookme_rpc_serving_provider_index") == 0
        assert (
            metric(
                t.registry,
                "bookme_rpc_failovers_total",
                from_provider=t.label_b,
                to_provider=t.label_a,
            )
            == 1
        )


async def test_all_providers_failing_raises_after_bounded_attempts():
    async with scripted(status(502), status(429), max_attempts=6) as t:
        with pytest.raises(AllProvidersFailed) as caught:
            await t.client.block_number()
        assert caught.value.attempts == 6
        assert t.hosts_called() == ["a", "b"] * 3
    assert "SECRET" not in str(caught.value)


async def test_a_stuck_head_fails_over_when_another_provider_is_ahead():
    heads = {"b": 20}

    def moving(method: str, params: list[Any]) -> Any:
        if method == "eth_blockNumber":
            return hex(heads["b"])
        return healthy()(method, params)

    async with scripted(healthy(15), moving, head_stale_after_seconds=30.0) as t:
        assert await t.client.block_number() == 15
        t.clock.now += 29
        assert await t.client.block_number() == 15  # not yet stale
        t.clock.now += 2
        heads["b"] = 21
        assert await t.client.block_number() == 21
        assert t.client.current_provider == t.label_b
        assert (
            metric(t.registry, "bookme_rpc_errors_total", provider=t.label_a, kind="stale_head")
            == 1
        )


async def test_an_idle_chain_is_not_a_stale_provider():
    async with scripted(healthy(15), healthy(15), head_stale_after_seconds=30.0) as t:
        await t.client.block_number()
        t.clock.now += 120
        assert await t.client.block_number() == 15
        assert t.client.current_provider == t.label_a
        assert (
            metric(t.registry, "bookme_rpc_errors_total", provider=t.label_a, kind="stale_head")
            == 0
        )


async def test_a_provider_on_the_wrong_chain_is_never_used():
    def mainnet(method: str, params: list[Any]) -> Any:
        return "0x1" if method == "eth_chainId" else "0x99"

    async with scripted(mainnet, healthy(5), expected_chain_id=31337) as t:
        with capture_logs() as logs:
            assert await t.client.block_number() == 5
            t.clock.now += 3600  # long after any cool-down
            assert await t.client.block_number() == 5
        assert t.calls == [
            ("a", "eth_chainId"),
            ("b", "eth_chainId"),
            ("b", "eth_blockNumber"),
            ("b", "eth_blockNumber"),
        ]
        assert any(e["event"] == "rpc_provider_wrong_chain" for e in logs)
        assert (
            metric(t.registry, "bookme_rpc_errors_total", provider=t.label_a, kind="wrong_chain")
            == 1
        )


def test_mask_url_hides_credentials():
    assert mask_url("https://base-mainnet.g.alchemy.com/v2/abc123") == (
        "https://base-mainnet.g.alchemy.com/***"
    )
    assert mask_url("wss://user:pass@node.example:8546/?key=1") == "wss://node.example:8546/***"
    assert mask_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
    assert mask_url("http://127.0.0.1:8545/") == "http://127.0.0.1:8545"


def test_same_host_providers_get_distinct_labels():
    client = ChainClient(["https://x.example/v2/k1", "https://x.example/v2/k2"])
    assert client.providers == ("https://x.example/***", "https://x.example/***#1")


def test_rejects_unknown_schemes_without_echoing_the_url():
    with pytest.raises(ValueError, match="ftp") as caught:
        ChainClient(["ftp://files.example/secretpath"])
    assert "secretpath" not in str(caught.value)
