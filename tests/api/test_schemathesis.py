"""Schemathesis over the served OpenAPI schema: no generated request gets a 5xx, and every
response (status, headers, content type, body) conforms to what the schema documents.

The app runs with its real lifespan against real Postgres and Temporal (a worker runs the real
booking workflow) behind a live uvicorn; schemathesis drives it from a thread, with valid tokens
for each role, a stranger's token and none, on a real booking id or a random one.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import CheckContext, CheckFunction
from schemathesis.core.result import Err
from schemathesis.core.transport import Response
from schemathesis.errors import FailureGroup

from tests.api.conftest import ApiFactory
from tests.api.fakes import FakeChain
from tests.api.helpers import (
    CUSTOMER_AUTH,
    OPERATOR_AUTH,
    OTHER_CUSTOMER_AUTH,
    PROVIDER_AUTH,
    SERVICE_AUTH,
    booking_body,
    running_server,
)

pytestmark = pytest.mark.integration

# Per operation and generation mode; the run stays well under a minute on a loaded machine.
EXAMPLES = 15
AUTHS = [CUSTOMER_AUTH, PROVIDER_AUTH, OPERATOR_AUTH, OTHER_CUSTOMER_AUTH, SERVICE_AUTH, {}]


def not_a_server_error_but_relay_unavailable(
    ctx: CheckContext, response: Response, case: Case[Any]
) -> bool | None:
    """Relaying a payment needs a chain, which this stack has not: its documented 503
    ``relay_unavailable`` is the right answer there; any other 5xx is still a failure."""
    if response.status_code == 503 and response.json().get("code") == "relay_unavailable":
        return None
    return schemathesis.checks.not_a_server_error(ctx, response, case)


CHECKS: list[CheckFunction] = [
    not_a_server_error_but_relay_unavailable,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]
# An accepted stream never ends (test_stream covers it).
SKIPPED = {"/bookings/{booking_id}/stream"}
# /health answers a documented 503 while a dependency is down, and this stack has no chain.
HEALTH_CHECKS = [check for check in CHECKS if check is not not_a_server_error_but_relay_unavailable]


async def test_generated_requests_get_no_server_error_and_match_the_schema(
    factory: ApiFactory, worker: FakeChain
) -> None:
    app = factory.app()
    async with running_server(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as http:
            created = await http.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
            assert created.status_code == 201, created.text
            document = (await http.get("/openapi.json")).json()
        failures, statuses = await asyncio.to_thread(
            _fuzz, document, base_url, created.json()["id"]
        )
    assert not failures, "\n\n".join(failures[:10])
    # The run got past auth and validation into the handlers, not only the front door.
    assert {200, 401, 403, 404, 422} <= statuses, statuses


def _fuzz(document: dict[str, Any], base_url: str, booking_id: str) -> tuple[list[str], set[int]]:
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    statuses: set[int] = set()
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # our own schema must load whole
        operation = result.ok()
        if operation.path in SKIPPED:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            cases = [operation.as_strategy(generation_mode=mode)]
            if "{booking_id}" in operation.path:
                cases.append(
                    operation.as_strategy(
                        generation_mode=mode, path_parameters={"booking_id": booking_id}
                    )
                )
            checks = HEALTH_CHECKS if operation.path == "/health" else CHECKS
            _run(st.one_of(cases), checks, base_url, failures, statuses)
    return failures, statuses


def _run(
    cases: st.SearchStrategy[Case[Any]],
    checks: list[CheckFunction],
    base_url: str,
    failures: list[str],
    statuses: set[int],
) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, auth=st.sampled_from(AUTHS))
    def call(case: Case[Any], auth: dict[str, str]) -> None:
        response = case.call(base_url=base_url, headers=auth, timeout=30)
        statuses.add(response.status_code)
        try:
            case.validate_response(response, checks=checks)
        except FailureGroup as failure:
            failures.append(f"{case.method} {case.formatted_path}: {_short(failure)}")

    # Unsatisfiable: an operation without parameters has no negative case to generate.
    with contextlib.suppress(Unsatisfiable):
        call()


def _short(failure: BaseException, limit: int = 1500) -> str:
    text = str(failure)
    return text if len(text) <= limit else text[:limit] + " ..."


async def test_found_by_schemathesis_an_id_beyond_bigint_is_a_422(client: httpx.AsyncClient):
    created = await client.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
    response = await client.get(
        f"/bookings/{created.json()['id']}/events",
        params={"after": str(2**70)},
        headers=CUSTOMER_AUTH,
    )
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["field"] == "query.after"


async def test_found_by_schemathesis_an_undecodable_body_is_a_422_naming_it(
    client: httpx.AsyncClient,
):
    response = await client.post(
        "/bookings",
        content=b"\xff\xfe{",
        headers={**CUSTOMER_AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert response.json()["details"][0]["field"] == "body"
