"""ChainClient retry/failover logic against scripted providers (httpx MockTransport)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from chain.client import ChainClient
from chain.errors import (
    AllProvidersFailed,
    ExecutionReverted,
    LogQueryTooLarge,
    RpcError,
)
from chain.rpc import mask_url

A = "https://a.example/v2/SECRETKEY"
B = "https://b.example/rpc?apikey=OTHERSECRET"
LABEL_A = "https://a.example/***"
LABEL_B = "https://b.example/***"

Handler = Callable[[str, list[Any]], Any]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Scripted:
    """Per-host behaviour: a function (method, params) -> result, or an httpx.Response."""

    def __init__(self, **hosts: Handler) -> None:
        self.hosts = hosts
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.split(".")[0]
        body = json.loads(request.content)
        self.calls.append((host, body["method"]))
        outcome = self.hosts[host](body["method"], body["params"])
        if asyncio.iscoroutine(outcome):
            outcome = await outcome
        if isinstance(outcome, httpx.Response):
            return outcome
        if isinstance(outcome, dict) and "error" in outcome:
            return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], **outcome})
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "result": outcome})

    def hosts_called(self) -> list[str]:
        return [host for host, _ in self.calls]


def healthy(head: int = 10) -> Handler:
    def answer(method: str, params: list[Any]) -> Any:
        if method == "eth_chainId":
            return "0x7a69"
        if method == "eth_blockNumber":
            return hex(head)
        return "0x"

    return answer


def status(code: int) -> Handler:
    return lambda method, params: httpx.Response(code, text="nope")


def make_client(
    script: Scripted, **options: Any
) -> tuple[ChainClient, CollectorRegistry, FakeClock]:
    registry = CollectorRegistry()
    clock = FakeClock()
    defaults: dict[str, Any] = {
        "registry": registry,
        "http_transport": httpx.MockTransport(script),
        "clock": clock,
        "jitter": lambda: 0.5,
        "backoff_initial": 0.001,
        "backoff_max": 0.002,
        "cooldown_seconds": 30.0,
        "timeout": 0.5,
    }
    defaults.update(options)
    return ChainClient([A, B], **defaults), registry, clock


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_serves_from_the_preferred_provider_when_healthy():
    script = Scripted(a=healthy(10), b=healthy(10))
    client, registry, _ = make_client(script)
    async with client:
        assert await client.block_number() == 10
    assert script.hosts_called() == ["a"]
    assert client.current_provider == LABEL_A
    assert client.current_provider_index == 0
    assert (
        metric(registry, "bookme_rpc_requests_total", provider=LABEL_A, method="eth_blockNumber")
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
        (lambda m, p: httpx.Response(200, text="<html>bad gateway</html>"), "unavailable"),
    ],
)
async def test_fails_over_on_provider_errors(failure: Handler, kind: str):
    script = Scripted(a=failure, b=healthy(42))
    client, registry, _ = make_client(script)
    with capture_logs() as logs:
        async with client:
            assert await client.block_number() == 42
    assert script.hosts_called() == ["a", "b"]
    assert client.current_provider == LABEL_B
    assert metric(registry, "bookme_rpc_errors_total", provider=LABEL_A, kind=kind) == 1
    assert (
        metric(registry, "bookme_rpc_failovers_total", from_provider=LABEL_A, to_provider=LABEL_B)
        == 1
    )
    assert metric(registry, "bookme_rpc_serving_provider_index") == 1
    failover = [entry for entry in logs if entry["event"] == "rpc_failover"]
    assert failover == [
        {
            "event": "rpc_failover",
            "log_level": "warning",
            "from_provider": LABEL_A,
            "from_index": 0,
            "to_provider": LABEL_B,
            "to_index": 1,
            "method": "eth_blockNumber",
            "reason": kind,
        }
    ]
    # Credentials in the URLs never reach a log line.
    assert "SECRET" not in repr(logs)


async def test_fails_over_on_connection_error():
    def refuse(method: str, params: list[Any]) -> Any:
        raise httpx.ConnectError("connection refused to https://a.example/v2/SECRETKEY")

    script = Scripted(a=refuse, b=healthy(7))
    client, registry, _ = make_client(script)
    with capture_logs() as logs:
        async with client:
            assert await client.block_number() == 7
    assert metric(registry, "bookme_rpc_errors_total", provider=LABEL_A, kind="unavailable") == 1
    assert "SECRET" not in repr(logs)


async def test_fails_over_on_timeout():
    async def stall(method: str, params: list[Any]) -> Any:
        await asyncio.sleep(30)

    script = Scripted(a=stall, b=healthy(7))
    client, registry, _ = make_client(script, timeout=0.05)
    async with client:
        assert await client.block_number() == 7
    assert metric(registry, "bookme_rpc_errors_total", provider=LABEL_A, kind="timeout") == 1
    assert client.current_provider == LABEL_B


async def test_node_errors_are_raised_not_failed_over():
    def revert(method: str, params: list[Any]) -> Any:
        return {"error": {"code": 3, "message": "execution reverted", "data": "0xdeadbeef"}}

    script = Scripted(a=revert, b=healthy())
    client, _registry, _ = make_client(script)
    async with client:
        with pytest.raises(ExecutionReverted) as caught:
            await client.call({"to": "0x" + "11" * 20, "data": b"\x01"})
    assert caught.value.revert_data == bytes.fromhex("deadbeef")
    assert script.hosts_called() == ["a"]
    assert client.current_provider == LABEL_A

    def invalid(method: str, params: list[Any]) -> Any:
        return {"error": {"code": -32602, "message": "invalid params"}}

    script = Scripted(a=invalid, b=healthy())
    client, _, _ = make_client(script)
    async with client:
        with pytest.raises(RpcError) as error:
            await client.block_number()
    assert error.value.code == -32602
    assert script.hosts_called() == ["a"]


async def test_log_range_errors_carry_the_suggested_range():
    message = (
        "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block "
        "range. Based on your parameters, this block range should work: [0x10, 0x2f]"
    )

    def too_large(method: str, params: list[Any]) -> Any:
        return {"error": {"code": -32602, "message": message}}

    script = Scripted(a=too_large, b=healthy())
    client, _, _ = make_client(script)
    async with client:
        with pytest.raises(LogQueryTooLarge) as caught:
            await client.get_logs(from_block=0, to_block=1000)
    assert (caught.value.suggested_from_block, caught.value.suggested_to_block) == (0x10, 0x2F)
    assert script.hosts_called() == ["a"]


async def test_returns_to_the_preferred_provider_after_the_cooldown():
    broken = {"a": True}

    def flaky(method: str, params: list[Any]) -> Any:
        return httpx.Response(503) if broken["a"] else healthy(11)(method, params)

    script = Scripted(a=flaky, b=healthy(11))
    client, registry, clock = make_client(script, cooldown_seconds=30.0)
    with capture_logs() as logs:
        async with client:
            await client.block_number()
            assert client.current_provider == LABEL_B
            # During the cool-down the broken provider is not even tried.
            clock.now += 10
            await client.block_number()
            assert script.hosts_called() == ["a", "b", "b"]
            broken["a"] = False
            clock.now += 25
            await client.block_number()
            assert client.current_provider == LABEL_A
    assert script.hosts_called() == ["a", "b", "b", "a"]
    assert [e["event"] for e in logs if e["event"].startswith("rpc_provider_restored")] == [
        "rpc_provider_restored"
    ]
    assert metric(registry, "bookme_rpc_serving_provider_index") == 0
    assert (
        metric(registry, "bookme_rpc_failovers_total", from_provider=LABEL_B, to_provider=LABEL_A)
        == 1
    )


async def test_all_providers_failing_raises_after_bounded_attempts():
    script = Scripted(a=status(502), b=status(429))
    client, _registry, _ = make_client(script, max_attempts=6)
    async with client:
        with pytest.raises(AllProvidersFailed) as caught:
            await client.block_number()
    assert caught.value.attempts == 6
    assert script.hosts_called() == ["a", "b"] * 3
    assert "SECRET" not in str(caught.value)


async def test_a_stuck_head_fails_over_when_another_provider_is_ahead():
    heads = {"b": 20}

    def moving(method: str, params: list[Any]) -> Any:
        if method == "eth_blockNumber":
            return hex(heads["b"])
        return healthy()(method, params)

    script = Scripted(a=healthy(15), b=moving)
    client, registry, clock = make_client(script, head_stale_after_seconds=30.0)
    async with client:
        assert await client.block_number() == 15
        clock.now += 29
        assert await client.block_number() == 15  # not yet stale
        clock.now += 2
        heads["b"] = 21
        assert await client.block_number() == 21
    assert client.current_provider == LABEL_B
    assert metric(registry, "bookme_rpc_errors_total", provider=LABEL_A, kind="stale_head") == 1


async def test_an_idle_chain_is_not_a_stale_provider():
    script = Scripted(a=healthy(15), b=healthy(15))
    client, registry, clock = make_client(script, head_stale_after_seconds=30.0)
    async with client:
        await client.block_number()
        clock.now += 120
        assert await client.block_number() == 15
    assert client.current_provider == LABEL_A
    assert metric(registry, "bookme_rpc_errors_total", provider=LABEL_A, kind="stale_head") == 0


async def test_a_provider_on_the_wrong_chain_is_never_used():
    def mainnet(method: str, params: list[Any]) -> Any:
        return "0x1" if method == "eth_chainId" else "0x99"

    script = Scripted(a=mainnet, b=healthy(5))
    client, registry, clock = make_client(script, expected_chain_id=31337)
    with capture_logs() as logs:
        async with client:
            assert await client.block_number() == 5
            clock.now += 3600  # long after any cool-down
            assert await client.block_number() == 5
    assert script.calls == [
        ("a", "eth_chainId"),
        ("b", "eth_chainId"),
        ("b", "eth_blockNumber"),
        ("b", "eth_blockNumber"),
    ]
    assert any(e["event"] == "rpc_provider_wrong_chain" for e in logs)
    assert metric(registry, "bookme_rpc_errors_total", provider=LABEL_A, kind="wrong_chain") == 1


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
