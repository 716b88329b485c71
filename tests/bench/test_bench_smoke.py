"""The bench's catch-up code over a handful of events writes a well-formed result (no timings)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from bench.bare import BareLifecycle
from bench.ceiling import HistoryShape, bare_worker, history_shape
from bench.listener import ListenerBench, add_rows
from bench.results import Report
from bookme.embedded.anvil import AnvilNode
from tests.conftest import PostgresService
from tests.listener.driver import EscrowDriver

pytestmark = pytest.mark.integration

EVENTS = 12


async def test_catch_up_figures_land_in_the_json_result(
    fresh_chain: AnvilNode, postgres: PostgresService, temporal_client: Client, tmp_path: Path
) -> None:
    driver = await EscrowDriver.deploy(fresh_chain)
    await driver.close()
    figures = await ListenerBench(
        fresh_chain, driver.deployment, temporal_client, postgres.create_database
    ).run(EVENTS, live=2)
    report = Report(settings={"events": EVENTS})
    add_rows(report, figures)

    written = json.loads(report.write(tmp_path).read_text())

    assert written == json.loads((tmp_path / "latest.json").read_text())
    listener = written["data"]["listener"]
    assert listener["events"] == EVENTS
    for key in (
        "raw_get_logs",
        "ingest_noop_sink",
        "ingest_noop_workflow",
        "ceiling_before",
        "ceiling_after",
        "ceiling_local_before",
        "ceiling_local_after",
        "end_to_end",
    ):
        assert listener[key] > 0, key
    assert listener["live_signalled"]["n"] == 2
    assert listener["live_applied"]["n"] == 2
    assert {row["section"] for row in written["rows"]} == {"3 catch-up"}
    assert all(row["value"] for row in written["rows"])


async def test_bare_ceiling_workflow_has_the_shape_it_copies(temporal_client: Client) -> None:
    shape = HistoryShape(messages=3, activities=1, local_activities=2)
    queue = f"bench-shape-{uuid.uuid4().hex[:8]}"
    workflow_id = f"bench-shape-{uuid.uuid4()}"
    async with bare_worker(temporal_client, queue):
        handle = await temporal_client.start_workflow(
            BareLifecycle.run,
            args=[shape.messages, shape.activities, shape.local_activities],
            id=workflow_id,
            task_queue=queue,
        )
        for _ in range(shape.messages):
            await handle.signal(BareLifecycle.poke)
        await handle.result()

    assert await history_shape(temporal_client, workflow_id) == shape
