"""Which of Temporal's RPC statuses are an outage (503 with Retry-After) and which a 500.

The chaos run's two-minute Temporal outage behind a proxy saw two 500s: calls in flight when the
connection broke came back as CANCELLED ("operation was canceled"), a status the API never asks
for (it cancels no Temporal call), so it means the same as a transport error: no answer.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from temporalio.service import RPCError, RPCStatusCode

from api.errors import install_error_handlers


def _app(error: RPCError) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/call")
    async def call() -> None:
        raise error

    return app


async def _answer(error: RPCError) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app(error), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        return await http.get("/call")


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (RPCStatusCode.UNAVAILABLE, "connection refused"),
        (RPCStatusCode.DEADLINE_EXCEEDED, "deadline exceeded"),
        (RPCStatusCode.UNKNOWN, "transport error"),
        (RPCStatusCode.CANCELLED, "operation was canceled"),
    ],
)
async def test_a_lost_connection_is_a_503_with_retry_after(
    status: RPCStatusCode, message: str
) -> None:
    response = await _answer(RPCError(message, status, b""))
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "temporal_unavailable"
    assert int(response.headers["Retry-After"]) >= 1


async def test_a_refusal_is_still_a_500() -> None:
    response = await _answer(RPCError("bad namespace", RPCStatusCode.INVALID_ARGUMENT, b""))
    assert response.status_code == 500, response.text
