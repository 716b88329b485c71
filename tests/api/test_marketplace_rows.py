"""Rows of the marketplace's own app in the bookings table: the API neither serves nor trips on
them (their statuses may be ones it does not know)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.helpers import CUSTOMER, CUSTOMER_AUTH, OPERATOR_AUTH, PROVIDER
from tests.api.test_listing import make

pytestmark = pytest.mark.integration


async def _marketplace_rows(engine: AsyncEngine) -> list[str]:
    """What the marketplace's app writes: no workflow, statuses of its own or of ours."""
    ids = [str(uuid.uuid4()) for _ in range(3)]
    async with engine.begin() as conn:
        for booking_id, status in zip(ids, ("NO_SHOW", "confirmed", "PAID"), strict=True):
            await conn.execute(
                text(
                    "INSERT INTO bookings (id, service_id, customer_id, provider_id, scheduled_at,"
                    " status, customer_wallet, provider_wallet)"
                    " VALUES (CAST(:id AS uuid), 'svc', 'cust-1', 'prov-1', now(), :status,"
                    " :customer, :provider)"
                ),
                {"id": booking_id, "status": status, "customer": CUSTOMER, "provider": PROVIDER},
            )
    return ids


async def test_the_marketplaces_own_rows_are_not_served_and_break_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ours = await make(client)
    theirs = await _marketplace_rows(engine)

    for auth in (OPERATOR_AUTH, CUSTOMER_AUTH):
        listed = await client.get("/bookings?limit=100", headers=auth)
        assert listed.status_code == 200, listed.text
        assert [item["id"] for item in listed.json()["items"]] == [ours]
    # Even with a status of ours, the marketplace's row is not one of the service's bookings.
    paid = await client.get("/bookings?status=PAID", headers=OPERATOR_AUTH)
    assert paid.status_code == 200
    assert paid.json()["items"] == []
    for booking_id in theirs:
        for path in (f"/bookings/{booking_id}", f"/bookings/{booking_id}/events"):
            response = await client.get(path, headers=OPERATOR_AUTH)
            assert response.status_code == 404, response.text
            assert response.json()["code"] == "booking_not_found"
    assert (await client.get(f"/bookings/{ours}", headers=CUSTOMER_AUTH)).status_code == 200
