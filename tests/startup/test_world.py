"""bookme/world.py: production refuses a chain that differs from its settings, development warns,
and the periodic re-check feeds the gauge and the status `/health` reads."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from bookme.embedded.anvil import AnvilNode
from bookme.embedded.process import free_port
from bookme.settings import Environment, Settings
from bookme.world import WorldCheckFailed, watch_world_own_client
from tests.contracts.harness import EscrowHarness

pytestmark = pytest.mark.integration


def settings_for(node: AnvilNode, harness: EscrowHarness, **overrides: Any) -> Settings:
    roles = harness.roles
    values: dict[str, Any] = {
        "chain_id": node.chain_id,
        "rpc_urls": [node.http_url],
        "escrow_address": harness.escrow.address,
        "usdc_address": harness.usdc.address,
        "signer_private_key": roles.signer.private_key,
        "operator_private_key": roles.operator.private_key,
        "world_check_interval_seconds": 0,
        **overrides,
    }
    return Settings(_env_file=None, **values)


def in_production(settings: Settings) -> Settings:
    # Production validation refuses anvil's chain and keys; the policy under test is the check's.
    return settings.model_copy(update={"environment": Environment.PRODUCTION})


def gauge(registry: CollectorRegistry, check: str) -> float | None:
    return registry.get_sample_value("bookme_world_check_ok", {"check": check})


async def test_matching_settings_start_and_every_gauge_reads_ok(fresh_chain: AnvilNode):
    harness = EscrowHarness(fresh_chain)
    settings = in_production(settings_for(fresh_chain, harness))
    registry = CollectorRegistry()
    async with watch_world_own_client(
        settings, settings.rpc_urls, harness.escrow.address, registry=registry, process="test"
    ) as watch:
        status = watch.status()
        assert status.ok
        assert not status.degraded
        assert status.summary == "chain matches settings"
    for check in ("chain_id", "contract_code", "signing_domain", "fee_policy", "usdc"):
        assert gauge(registry, check) == 1.0
    assert gauge(registry, "signer_role") == gauge(registry, "operator_role") == 1.0


async def test_production_refuses_with_one_line_and_development_warns(fresh_chain: AnvilNode):
    harness = EscrowHarness(fresh_chain)
    wrong_key = harness.roles.stranger
    settings = settings_for(fresh_chain, harness, operator_private_key=wrong_key.private_key)
    line = (
        f"chain check failed: the escrow's operator is {harness.roles.operator.address}, "
        f"settings' operator key is {wrong_key.address}"
    )
    with pytest.raises(WorldCheckFailed) as refused:
        async with watch_world_own_client(
            in_production(settings),
            settings.rpc_urls,
            harness.escrow.address,
            registry=CollectorRegistry(),
            process="test",
        ):
            pytest.fail("production started on a chain that differs from its settings")
    assert str(refused.value) == line
    assert wrong_key.private_key.removeprefix("0x") not in str(refused.value)

    registry = CollectorRegistry()
    with capture_logs() as logs:
        async with watch_world_own_client(
            settings, settings.rpc_urls, harness.escrow.address, registry=registry, process="test"
        ) as watch:
            assert watch.status().degraded
            assert watch.status().summary == line
    assert any(e["event"] == "world_check_mismatch_tolerated" for e in logs)
    assert gauge(registry, "operator_role") == 0.0
    assert gauge(registry, "signer_role") == 1.0


async def test_the_periodic_check_sees_the_chain_change_under_a_running_process(
    fresh_chain: AnvilNode,
):
    harness = EscrowHarness(fresh_chain)
    settings = settings_for(fresh_chain, harness, world_check_interval_seconds=1)
    registry = CollectorRegistry()
    async with watch_world_own_client(
        settings, settings.rpc_urls, harness.escrow.address, registry=registry, process="test"
    ) as watch:
        assert watch.status().ok
        harness.send(harness.escrow.functions.setFeePolicy(900, 500, 500), harness.roles.owner)
        for _ in range(50):
            if watch.status().degraded:
                break
            await asyncio.sleep(0.1)
        assert watch.status().summary == (
            "chain check failed: on-chain platform_fee_bps is 900, settings say 1000"
        )
        assert gauge(registry, "fee_policy") == 0.0


async def test_an_unreachable_chain_starts_degraded_even_in_production(fresh_chain: AnvilNode):
    # A provider outage at start must not keep every replica down: nothing is proven wrong.
    harness = EscrowHarness(fresh_chain)
    settings = settings_for(
        fresh_chain, harness, rpc_urls=[f"http://127.0.0.1:{free_port()}"], rpc_timeout_seconds=1
    )
    for environment in (in_production(settings), settings):
        async with watch_world_own_client(
            environment,
            settings.rpc_urls,
            harness.escrow.address,
            registry=CollectorRegistry(),
            process="t",
        ) as watch:
            assert watch.status().degraded
            assert watch.status().checked_at is None
            assert watch.status().summary.startswith("chain not verified yet (chain unreachable")
