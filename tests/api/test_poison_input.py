"""Text Postgres cannot store (NUL, lone surrogates) is refused at the edge with a 422 naming
the field, so it never reaches a workflow whose first write would fail and retry forever."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from api.auth import mint_token
from api.routes import admin, bookings, health, metrics
from tests.api.helpers import (
    CUSTOMER,
    CUSTOMER_AUTH,
    JWT_SECRET,
    OPERATOR_AUTH,
    booking_body,
)

ROUTERS = (bookings, admin, health, metrics)  # every router api/main.py includes
POISON = ["bad\u0000id", "bad\ud800id", "\udfff"]


async def post_json(
    client: httpx.AsyncClient, path: str, body: Any, auth: dict[str, str]
) -> httpx.Response:
    """POST `body` as JSON with `\\u` escapes: a lone surrogate cannot be sent as UTF-8, so the
    server's JSON parser is what turns the escape back into one (as in the attack)."""
    headers = {**auth, "Content-Type": "application/json"}
    return await client.post(path, content=json.dumps(body).encode(), headers=headers)


def _request_models() -> list[type[BaseModel]]:
    models: set[type[BaseModel]] = set()
    for module in ROUTERS:
        for route in module.router.routes:
            assert isinstance(route, APIRoute)
            for param in route.dependant.body_params:
                annotation = param.field_info.annotation
                for candidate in (annotation, *getattr(annotation, "__args__", ())):
                    if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                        models.add(candidate)
    return sorted(models, key=lambda m: m.__name__)


@pytest.mark.parametrize("model", _request_models(), ids=lambda m: m.__name__)
@pytest.mark.parametrize("value", POISON, ids=["nul", "high-surrogate", "low-surrogate"])
def test_no_request_model_accepts_unstorable_text_in_any_field(
    model: type[BaseModel], value: str
) -> None:
    for name in model.model_fields:
        with pytest.raises(ValidationError) as refused:
            model.model_validate({name: value})
        assert any(error["loc"][:1] == (name,) for error in refused.value.errors()), (
            model.__name__,
            name,
        )


def test_the_request_models_found_include_every_body_with_text() -> None:
    names = {model.__name__ for model in _request_models()}
    assert {"BookingCreate", "CancellationCreate", "EmergencyCancelCreate"} <= names


@pytest.mark.integration
@pytest.mark.parametrize("value", POISON, ids=["nul", "high-surrogate", "low-surrogate"])
async def test_a_service_id_postgres_cannot_store_is_a_422_naming_it_and_honest_bookings_flow(
    client: httpx.AsyncClient, value: str
) -> None:
    poisoned = {**OPERATOR_AUTH, "Idempotency-Key": f"poison-{uuid.uuid4()}"}
    # The attack retried with the same key got 503 each time; now each try is a plain 422.
    for _ in range(3):
        refused = await post_json(client, "/bookings", booking_body(service_id=value), poisoned)
        assert refused.status_code == 422, refused.text
        assert refused.json()["details"][0]["field"] == "body.service_id"
    honest = await client.post(
        "/bookings",
        json=booking_body(),
        headers={**OPERATOR_AUTH, "Idempotency-Key": f"honest-{uuid.uuid4()}"},
    )
    assert honest.status_code == 201, honest.text
    booking_id = honest.json()["id"]
    # The workflow serves it: a payment authorization is signed for its customer.
    signed = await client.post(
        f"/bookings/{booking_id}/payment-authorization", headers=CUSTOMER_AUTH
    )
    assert signed.status_code == 200, signed.text


@pytest.mark.integration
async def test_unstorable_text_in_every_body_field_of_a_real_request_is_named(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/bookings", json=booking_body(), headers=OPERATOR_AUTH)
    booking_id = created.json()["id"]
    cases = [
        ("/bookings", booking_body(provider_id="p\u0000"), OPERATOR_AUTH, "body.provider_id"),
        ("/bookings", booking_body(customer_id="c\ud83d"), OPERATOR_AUTH, "body.customer_id"),
        (
            f"/bookings/{booking_id}/cancellation",
            {"reason": "no\u0000"},
            CUSTOMER_AUTH,
            "body.reason",
        ),
        (
            f"/admin/bookings/{booking_id}/emergency-cancel",
            {"reason": "\udc00"},
            OPERATOR_AUTH,
            "body.reason",
        ),
    ]
    for path, body, auth, field in cases:
        response = await post_json(client, path, body, auth)
        assert response.status_code == 422, (path, response.text)
        assert field in [d["field"] for d in response.json()["details"]], (path, response.text)


@pytest.mark.integration
async def test_a_token_subject_postgres_cannot_store_is_a_401_not_a_500(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/bookings", json=booking_body(), headers=OPERATOR_AUTH)
    poisoned = mint_token(JWT_SECRET, sub="cust\u00001", role="customer", wallet=CUSTOMER)
    response = await client.post(
        f"/bookings/{created.json()['id']}/payment-authorization",
        headers={"Authorization": f"Bearer {poisoned}"},
    )
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "invalid_token"
