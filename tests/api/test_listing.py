"""GET /bookings (keyset pages, filters, scoping) and GET /bookings/{id}/events."""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import (
    CUSTOMER,
    CUSTOMER_AUTH,
    OPERATOR_AUTH,
    OTHER_CUSTOMER,
    PROVIDER,
    PROVIDER_AUTH,
    SERVICE_AUTH,
    booking_body,
)

pytestmark = pytest.mark.integration


async def make(client: httpx.AsyncClient, **overrides: object) -> str:
    """A booking the marketplace created (for "cust-1" unless overridden)."""
    response = await client.post("/bookings", json=booking_body(**overrides), headers=SERVICE_AUTH)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def pages(client: httpx.AsyncClient, auth: dict[str, str], query: str) -> list[list[str]]:
    result: list[list[str]] = []
    cursor: str | None = None
    while True:
        url = f"/bookings?{query}" + (f"&cursor={cursor}" if cursor else "")
        response = await client.get(url, headers=auth)
        assert response.status_code == 200, response.text
        body = response.json()
        result.append([item["id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return result


async def test_keyset_pages_are_complete_ordered_and_scoped(client: httpx.AsyncClient) -> None:
    mine = [await make(client) for _ in range(5)]
    theirs = [
        await make(client, customer_id="cust-2", customer_wallet=OTHER_CUSTOMER) for _ in range(2)
    ]

    got = await pages(client, CUSTOMER_AUTH, "limit=2")
    assert [len(p) for p in got] == [2, 2, 1]
    assert [i for p in got for i in p] == list(reversed(mine))  # newest first, no repeats

    everything = await pages(client, OPERATOR_AUTH, "limit=3")
    assert sorted(i for p in everything for i in p) == sorted(mine + theirs)

    as_provider = await pages(client, PROVIDER_AUTH, "limit=100")
    assert sorted(as_provider[0]) == sorted(mine + theirs)  # the provider of all of them

    filtered = await pages(client, OPERATOR_AUTH, f"customer={OTHER_CUSTOMER}")
    assert sorted(filtered[0]) == sorted(theirs)


async def test_status_filter(client: httpx.AsyncClient) -> None:
    keep = await make(client)
    gone = await make(client)
    cancel = await client.post(
        f"/bookings/{gone}/cancellation", json={"reason": "no"}, headers=CUSTOMER_AUTH
    )
    assert cancel.status_code == 200
    cancelled = await client.get("/bookings?status=CANCELLED", headers=CUSTOMER_AUTH)
    assert [b["id"] for b in cancelled.json()["items"]] == [gone]
    pending = await client.get("/bookings?status=PENDING_PAYMENT", headers=CUSTOMER_AUTH)
    assert [b["id"] for b in pending.json()["items"]] == [keep]
    bogus = await client.get("/bookings?status=LOST", headers=CUSTOMER_AUTH)
    assert bogus.status_code == 422


async def test_listing_someone_elses_bookings_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/bookings?customer={OTHER_CUSTOMER}", headers=CUSTOMER_AUTH)
    assert response.status_code == 403
    response = await client.get(f"/bookings?provider={CUSTOMER}", headers=PROVIDER_AUTH)
    assert response.status_code == 403
    own = await client.get(f"/bookings?provider={PROVIDER}", headers=PROVIDER_AUTH)
    assert own.status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("cursor=not-a-cursor", "query.cursor"),
        ("customer=0x1234", "query.customer"),
        (f"customer={CUSTOMER.lower()}", "query.customer"),
        ("limit=0", "query.limit"),
        ("limit=101", "query.limit"),
    ],
)
async def test_bad_query_parameters_are_422(
    client: httpx.AsyncClient, query: str, field: str
) -> None:
    response = await client.get(f"/bookings?{query}", headers=OPERATOR_AUTH)
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["field"] == field


async def test_events_are_the_audit_trail_in_order(client: httpx.AsyncClient) -> None:
    booking = await make(client)
    await client.post(
        f"/bookings/{booking}/cancellation", json={"reason": "no"}, headers=CUSTOMER_AUTH
    )
    response = await client.get(f"/bookings/{booking}/events", headers=PROVIDER_AUTH)
    assert response.status_code == 200
    items = response.json()["items"]
    assert [(e["kind"], e["to_status"]) for e in items] == [
        ("created", "PENDING_PAYMENT"),
        ("cancelled_unpaid", "CANCELLED"),
    ]
    assert items[1]["reason"] == "customer: no"
    first_id = items[0]["id"]
    after = await client.get(f"/bookings/{booking}/events?after={first_id}", headers=CUSTOMER_AUTH)
    assert [e["kind"] for e in after.json()["items"]] == ["cancelled_unpaid"]
    paged = await client.get(f"/bookings/{booking}/events?limit=1", headers=CUSTOMER_AUTH)
    assert paged.json()["next_after"] == first_id
