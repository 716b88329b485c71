"""The booking workflows' custom search attributes on whatever Temporal the worker connects to.

Development and tests register what is missing (idempotent). Production never changes the
cluster's schema from an application process: the worker checks, and refuses to start with the
exact `temporal operator search-attribute create ...` command(s) to run when any is missing. An
attribute that exists with another type is refused everywhere: only its removal fixes it.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.service import RPCError, RPCStatusCode

from bookme.settings import Environment, SettingsError
from bookme.temporal_connect import TemporalConnection
from workflows.search_attributes import ALL_KEYS

# The names `temporal ... --type` and `--search-attribute NAME=TYPE` accept.
CLI_TYPE_NAMES = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}


class SearchAttributesMissing(SettingsError):
    """The namespace lacks (or mistypes) the workflows' search attributes; says what to run."""


def wanted() -> dict[str, SearchAttributeIndexedValueType]:
    return {key.name: key.indexed_value_type for key in ALL_KEYS}


def create_commands(
    names: list[str], namespace: str, address: str, *, tls: bool = False
) -> list[str]:
    """One `temporal operator search-attribute create` per attribute: given several ``--name``
    and one ``--type``, the CLI (1.x) creates only the first."""
    types = wanted()
    connection = f"--address {shlex.quote(address)} --namespace {shlex.quote(namespace)}"
    if tls:
        connection += " --tls"  # plus --tls-ca-path / --api-key as the worker's settings say
    return [
        f"temporal operator search-attribute create {connection} "
        f"--name {name} --type {CLI_TYPE_NAMES[types[name]]}"
        for name in names
    ]


async def _existing(client: Client, namespace: str) -> Mapping[str, int] | None:
    """The namespace's custom attributes and their types; None when the server cannot list."""
    try:
        response = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
    except RPCError as err:
        # The time-skipping test server implements Add but not List.
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        return None
    return dict(response.custom_attributes)


def _mistyped(existing: Mapping[str, int]) -> list[str]:
    types = wanted()
    return [
        f"{name} is {CLI_TYPE_NAMES.get(SearchAttributeIndexedValueType(existing[name]), '?')}, "
        f"the workflows need {CLI_TYPE_NAMES[types[name]]}"
        for name in types
        if name in existing and existing[name] != int(types[name])
    ]


async def register_search_attributes(client: Client, namespace: str) -> None:
    """Register the project's search attributes that are missing (idempotent)."""
    existing = await _existing(client, namespace)
    missing = {
        name: IndexedValueType.ValueType(int(kind))
        for name, kind in wanted().items()
        if existing is None or name not in existing
    }
    if not missing:
        return
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
        )
    except RPCError as err:
        if err.status != RPCStatusCode.ALREADY_EXISTS:
            raise


async def ensure_search_attributes(
    client: Client, environment: Environment, connection: TemporalConnection
) -> None:
    """Register (development, test) or check (production) the search attributes, or refuse."""
    namespace = client.namespace
    existing = await _existing(client, namespace)
    if existing is not None and (wrong := _mistyped(existing)):
        names = "".join(f" --name {line.split()[0]}" for line in wrong)
        raise SearchAttributesMissing(
            f"Temporal namespace {namespace}: search attribute {'; '.join(wrong)} (remove it: "
            f"`temporal operator search-attribute remove --namespace {namespace}{names}`, "
            "then restart the worker)"
        )
    if environment is not Environment.PRODUCTION:
        await register_search_attributes(client, namespace)
        return
    missing = [name for name in wanted() if existing is None or name not in existing]
    if missing:
        commands = " && ".join(
            create_commands(missing, namespace, connection.address, tls=bool(connection.tls))
        )
        raise SearchAttributesMissing(
            f"Temporal namespace {namespace} lacks the search attributes {', '.join(missing)}: "
            f"run `{commands}`"
        )
