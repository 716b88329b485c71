"""Shared test helpers: dev tokens for each role, a valid booking body (as the marketplace sends
it), an in-process client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from api.auth import mint_token

JWT_SECRET = "api-tests-secret-0123456789abcdef"
CUSTOMER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
PROVIDER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
OTHER_CUSTOMER = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
OTHER_PROVIDER = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"


def token(sub: str, role: str, wallet: str | None = None) -> dict[str, str]:
    """Authorization header for a dev token."""
    return {"Authorization": f"Bearer {mint_token(JWT_SECRET, sub=sub, role=role, wallet=wallet)}"}


CUSTOMER_AUTH = token("cust-1", "customer", CUSTOMER)
OTHER_CUSTOMER_AUTH = token("cust-2", "customer", OTHER_CUSTOMER)
PROVIDER_AUTH = token("prov-1", "provider", PROVIDER)
OTHER_PROVIDER_AUTH = token("prov-2", "provider", OTHER_PROVIDER)
OPERATOR_AUTH = token("ops-1", "operator")
# The marketplace's server-to-server credential: it creates bookings, for "cust-1" by default.
SERVICE_AUTH = token("marketplace", "service")


def booking_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "service_id": "haircut",
        "provider_id": "prov-1",
        "customer_id": "cust-1",
        "customer_wallet": CUSTOMER,
        "provider_wallet": PROVIDER,
        "amount": "25.5",
        "scheduled_at": (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0).isoformat(),
    }
    body.update(overrides)
    return body


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and talk to it over httpx's ASGI transport."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


@asynccontextmanager
async def running_server(app: FastAPI) -> AsyncIterator[str]:
    """Serve the app with a real uvicorn on a free loopback port (streaming needs a socket)."""
    import asyncio

    import uvicorn

    from bookme.embedded.process import free_port

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
