"""The fixtures start real servers that answer, and stop them without leftovers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from workflows.search_attributes import (
    ALL_KEYS,
    AMOUNT_UNITS,
    BOOKING_ID,
    BOOKING_STATUS,
    CHAIN_BOOKING_ID,
    CUSTOMER_WALLET,
    PROVIDER_WALLET,
    SCHEDULED_AT,
)

pytestmark = pytest.mark.integration


async def test_postgres_databases_are_isolated(postgres, database_url):
    other = postgres.create_database()
    assert other != database_url
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        await conn.execute("CREATE TABLE only_here (id int)")
        assert await conn.fetchval("SELECT count(*) FROM only_here") == 0
    finally:
        await conn.close()
    conn = await asyncpg.connect(other.replace("+asyncpg", ""))
    try:
        found = await conn.fetchval("SELECT to_regclass('only_here') IS NOT NULL")
        assert found is False
    finally:
        await conn.close()


def test_anvil_serves_funded_checksummed_accounts(fresh_chain):
    assert fresh_chain.rpc("eth_chainId") == hex(31337)
    assert len(fresh_chain.accounts) == 10
    first = fresh_chain.accounts[0]
    assert first.address.startswith("0x")
    assert first.address != first.address.lower()
    balance = int(str(fresh_chain.rpc("eth_getBalance", first.address, "latest")), 16)
    assert balance > 0
    assert first.private_key not in repr(first)


def test_fresh_chain_rolls_back(anvil):
    snapshot = anvil.rpc("evm_snapshot")
    before = anvil.rpc("eth_blockNumber")
    anvil.rpc("evm_mine")
    assert anvil.rpc("eth_blockNumber") != before
    anvil.rpc("evm_revert", snapshot)
    assert anvil.rpc("eth_blockNumber") == before


async def test_dev_server_has_search_attributes(temporal_client: Client):
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    listed = await temporal_client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=temporal_client.namespace)
    )
    assert {key.name for key in ALL_KEYS} <= set(listed.custom_attributes)


@workflow.defn(name="harness-upsert-all-search-attributes")
class UpsertAllSearchAttributes:
    """Upserts every project search attribute: fails forever if one is not registered."""

    @workflow.run
    async def run(self) -> str:
        workflow.upsert_search_attributes(
            [
                BOOKING_ID.value_set("b-1"),
                BOOKING_STATUS.value_set("PAID"),
                CUSTOMER_WALLET.value_set("0xC"),
                PROVIDER_WALLET.value_set("0xP"),
                CHAIN_BOOKING_ID.value_set("0x01"),
                AMOUNT_UNITS.value_set(100_000_000),
                SCHEDULED_AT.value_set(datetime(2026, 12, 1, 14, tzinfo=UTC)),
            ]
        )
        return workflow.info().typed_search_attributes.get(BOOKING_STATUS) or ""


async def test_time_skipping_server_accepts_every_search_attribute(time_skipping_env):
    queue = f"harness-{uuid.uuid4()}"
    async with Worker(
        time_skipping_env.client, task_queue=queue, workflows=[UpsertAllSearchAttributes]
    ):
        result = await time_skipping_env.client.execute_workflow(
            UpsertAllSearchAttributes.run,
            id=f"harness-{uuid.uuid4()}",
            task_queue=queue,
            execution_timeout=timedelta(seconds=30),
        )
    assert result == "PAID"
