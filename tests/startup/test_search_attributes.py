"""bookme/search_attributes.py against the real dev server, each test in a namespace of its own:
development registers what is missing; production refuses with the command to run, and that
command, run as printed, is what makes it start."""

from __future__ import annotations

import asyncio
import shlex
import subprocess
import uuid
from datetime import timedelta

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client

from bookme.embedded.temporal import venv_binary
from bookme.search_attributes import SearchAttributesMissing, ensure_search_attributes, wanted
from bookme.settings import Environment
from bookme.temporal_connect import TemporalConnection
from tests.conftest import TemporalService

pytestmark = pytest.mark.integration


async def fresh_namespace(temporal: TemporalService, temporal_client: Client) -> Client:
    name = f"sa-{uuid.uuid4().hex[:10]}"
    await temporal_client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=name,
            workflow_execution_retention_period=Duration(
                seconds=int(timedelta(days=1).total_seconds())
            ),
        )
    )
    client = await Client.connect(temporal.address, namespace=name)
    for _ in range(100):  # the frontend learns of a new namespace on its next cache refresh
        try:
            await list_custom(client)
            return client
        except Exception:
            await asyncio.sleep(0.2)
    raise AssertionError(f"namespace {name} never became usable")


async def list_custom(client: Client) -> dict[str, int]:
    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    return dict(response.custom_attributes)


def cli(temporal: TemporalService, command: str) -> None:
    argv = shlex.split(command)
    assert argv[0] == "temporal"
    subprocess.run([str(venv_binary("temporal")), *argv[1:]], check=True, capture_output=True)


async def test_development_registers_and_production_then_starts(
    temporal: TemporalService, temporal_client: Client
):
    client = await fresh_namespace(temporal, temporal_client)
    connection = TemporalConnection(address=temporal.address, namespace=client.namespace)
    with pytest.raises(SearchAttributesMissing, match="lacks the search attributes BookingId"):
        await ensure_search_attributes(client, Environment.PRODUCTION, connection)
    await ensure_search_attributes(client, Environment.DEVELOPMENT, connection)
    custom = await list_custom(client)
    assert {name: custom.get(name) for name in wanted()} == {
        name: int(kind) for name, kind in wanted().items()
    }
    await ensure_search_attributes(client, Environment.PRODUCTION, connection)
    await ensure_search_attributes(client, Environment.DEVELOPMENT, connection)  # idempotent


async def test_production_names_the_commands_that_make_it_start(
    temporal: TemporalService, temporal_client: Client
):
    client = await fresh_namespace(temporal, temporal_client)
    connection = TemporalConnection(address=temporal.address, namespace=client.namespace)
    # A mistyped attribute is refused in every environment: registering cannot fix it.
    address = f"--address {temporal.address} --namespace {client.namespace}"
    cli(
        temporal,
        f"temporal operator search-attribute create {address} --name AmountUnits --type Keyword",
    )
    with pytest.raises(
        SearchAttributesMissing,
        match=r"AmountUnits is Keyword, the workflows need Int \(remove it: `temporal operator "
        r"search-attribute remove --namespace sa-\w+ --name AmountUnits`",
    ):
        await ensure_search_attributes(client, Environment.DEVELOPMENT, connection)
    cli(temporal, f"temporal operator search-attribute remove {address} --name AmountUnits --yes")

    with pytest.raises(SearchAttributesMissing) as refused:
        await ensure_search_attributes(client, Environment.PRODUCTION, connection)
    message = str(refused.value)
    assert "\n" not in message
    commands = message.split("run `", 1)[1].rstrip("`").split(" && ")
    assert len(commands) == len(wanted())
    for command in commands:
        cli(temporal, command)
    await ensure_search_attributes(client, Environment.PRODUCTION, connection)
