"""ChainClient against a real anvil: typed calls, WebSocket, and failover through a faulty proxy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from bookme.embedded.anvil import AnvilNode
from bookme.embedded.process import free_port
from chain.client import ChainClient
from chain.errors import ExecutionReverted, ProviderUnavailable
from chain.escrow import escrow_abi
from tests.chain.rpc_proxy import FaultyRpcProxy, Mode
from tests.chain.test_client import FakeClock
from tests.chain.ws_proxy import DroppingWsProxy

pytestmark = pytest.mark.integration


@pytest.fixture
async def proxy(fresh_chain: AnvilNode) -> AsyncIterator[FaultyRpcProxy]:
    faulty = FaultyRpcProxy(fresh_chain.http_url)
    await faulty.start()
    try:
        yield faulty
    finally:
        await faulty.stop()


@pytest.mark.parametrize("transport", ["http", "ws"])
async def test_typed_calls(fresh_chain: AnvilNode, transport: str):
    url = fresh_chain.http_url if transport == "http" else fresh_chain.ws_url
    alice, bob = fresh_chain.accounts[0].address, fresh_chain.accounts[1].address
    async with ChainClient([url], expected_chain_id=31337) as client:
        assert await client.chain_id() == 31337
        fresh_chain.rpc("evm_mine")
        head = await client.block_number()
        latest = await client.get_block("latest")
        by_number = await client.get_block(head)
        assert latest is not None
        assert by_number == latest
        assert latest.number == head
        parent = await client.get_block_by_hash(latest.parent_hash)
        assert parent is not None
        assert parent.number == head - 1
        assert await client.get_block(head + 1000) is None
        assert await client.get_balance(alice) == int(
            str(fresh_chain.rpc("eth_getBalance", alice, "latest")), 16
        )
        nonce = await client.get_transaction_count(alice)
        assert nonce == int(str(fresh_chain.rpc("eth_getTransactionCount", alice, "pending")), 16)
        assert await client.estimate_gas({"from": alice, "to": bob, "value": 1}) == 21_000
        assert await client.call({"from": alice, "to": bob}) == b""
        history = await client.fee_history(3, "latest", [50.0])
        assert len(history.base_fee_per_gas) == len(history.gas_used_ratio) + 1
        assert await client.max_priority_fee() >= 0
        assert await client.get_code(bob) == b""
        assert await client.get_logs(from_block=0, to_block="latest", address=bob) == []
        assert await client.get_transaction_receipt("0x" + "00" * 32) is None


async def test_reverting_call_raises_with_revert_data(escrow):
    async with ChainClient([escrow.node.http_url]) as client:
        abi = escrow_abi()
        with pytest.raises(ExecutionReverted) as caught:
            await client.estimate_gas(
                {
                    "from": escrow.roles.stranger.address,
                    "to": escrow.escrow.address,
                    "data": abi.encode_call("completeService", b"\x01" * 32),
                }
            )
    assert abi.explain(caught.value).error_name == "BookingNotPaid"


async def test_websocket_new_heads_subscription(fresh_chain: AnvilNode):
    async with ChainClient([fresh_chain.http_url, fresh_chain.ws_url]) as client:
        # The HTTP provider is preferred for calls, but subscriptions need a WebSocket.
        subscription = await client.subscribe("newHeads")
        assert subscription.provider == client.providers[1]
        fresh_chain.rpc("evm_mine")
        heads = aiter(subscription)
        head = await asyncio.wait_for(anext(heads), 10)
        assert int(head["number"], 16) == await client.block_number()
        await subscription.close()


async def test_dead_first_provider_fails_over(fresh_chain: AnvilNode):
    dead = f"http://127.0.0.1:{free_port()}"
    registry = CollectorRegistry()
    async with ChainClient([dead, fresh_chain.http_url], registry=registry) as client:
        assert await client.chain_id() == 31337
        assert client.current_provider_index == 1
    assert registry.get_sample_value("bookme_rpc_serving_provider_index") == 1


async def test_dead_websocket_fails_over(fresh_chain: AnvilNode):
    dead = f"ws://127.0.0.1:{free_port()}"
    async with ChainClient([dead, fresh_chain.http_url]) as client:
        assert await client.chain_id() == 31337
        assert client.current_provider == fresh_chain.http_url


async def test_rate_limited_provider_fails_over_and_is_restored(
    fresh_chain: AnvilNode, proxy: FaultyRpcProxy
):
    registry = CollectorRegistry()
    async with ChainClient(
        [proxy.url, fresh_chain.http_url], registry=registry, cooldown_seconds=0.2
    ) as client:
        assert await client.chain_id() == 31337
        assert client.current_provider_index == 0
        for mode in (Mode.RATE_LIMIT, Mode.RPC_RATE_LIMIT, Mode.SERVER_ERROR):
            proxy.mode = mode
            seen = proxy.requests
            assert await client.block_number() >= 0
            assert client.current_provider_index == 1
            assert proxy.requests == seen + 1
            proxy.mode = Mode.PASS
            await asyncio.sleep(0.25)  # past the cool-down
            await client.block_number()
            assert client.current_provider_index == 0
    errors = {
        kind: registry.get_sample_value(
            "bookme_rpc_errors_total", {"provider": proxy.url, "kind": kind}
        )
        for kind in ("rate_limited", "unavailable")
    }
    assert errors == {"rate_limited": 2.0, "unavailable": 1.0}


async def test_hanging_provider_times_out_and_fails_over(
    fresh_chain: AnvilNode, proxy: FaultyRpcProxy
):
    proxy.mode = Mode.HANG
    async with ChainClient([proxy.url, fresh_chain.http_url], timeout=0.3) as client:
        assert await client.block_number() >= 0
        assert client.current_provider_index == 1


async def test_stale_head_fails_over(fresh_chain: AnvilNode, proxy: FaultyRpcProxy):
    registry = CollectorRegistry()
    clock = FakeClock()  # staleness is judged on our clock, not on how loaded the machine is
    async with ChainClient(
        [proxy.url, fresh_chain.http_url],
        registry=registry,
        head_stale_after_seconds=0.2,
        clock=clock,
    ) as client:
        frozen = await client.block_number()
        proxy.mode = Mode.FREEZE_HEAD
        proxy.frozen_head = frozen
        fresh_chain.rpc("evm_mine")
        fresh_chain.rpc("evm_mine")
        assert await client.block_number() == frozen
        clock.now += 0.25
        assert await client.block_number() == frozen + 2
        assert client.current_provider_index == 1
    assert (
        registry.get_sample_value(
            "bookme_rpc_errors_total", {"provider": proxy.url, "kind": "stale_head"}
        )
        == 1.0
    )


@pytest.fixture
async def ws_proxy(fresh_chain: AnvilNode) -> AsyncIterator[DroppingWsProxy]:
    proxy = DroppingWsProxy(fresh_chain.ws_url)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


async def test_dropped_websocket_fails_over_and_reconnects(
    fresh_chain: AnvilNode, ws_proxy: DroppingWsProxy
):
    async with ChainClient([ws_proxy.url, fresh_chain.http_url], cooldown_seconds=0.2) as client:
        subscription = await client.subscribe("newHeads")
        assert await client.block_number() >= 0
        assert client.current_provider_index == 0

        await ws_proxy.drop()
        ws_proxy.refusing = True
        # The subscription ends loudly, so its consumer knows to resubscribe and backfill.
        with pytest.raises(ProviderUnavailable):
            await asyncio.wait_for(anext(aiter(subscription)), 10)
        assert await client.block_number() >= 0
        assert client.current_provider_index == 1

        ws_proxy.refusing = False
        await asyncio.sleep(0.25)  # past the cool-down
        assert await client.block_number() >= 0
        assert client.current_provider_index == 0
        assert ws_proxy.connections == 2
        fresh = await client.subscribe("newHeads")
        fresh_chain.rpc("evm_mine")
        head = await asyncio.wait_for(anext(aiter(fresh)), 10)
        assert int(head["number"], 16) == await client.block_number()
        await fresh.close()
