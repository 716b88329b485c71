"""The rule of who decides a booking's terms, without a server."""

from __future__ import annotations

import pytest

from api.auth import Principal, Role
from api.booking_terms import MARKETPLACE_FIELDS, creation_refusal
from api.schemas import BookingCreate
from tests.api.helpers import CUSTOMER, booking_body

CUSTOMER_CALLER = Principal(user_id="c", role=Role.CUSTOMER, wallet=CUSTOMER)


def test_the_marketplace_fields_are_the_create_bodys_fields() -> None:
    assert set(MARKETPLACE_FIELDS) <= set(BookingCreate.model_fields)
    # What a party may still say about a booking: which service, whose, and when.
    assert set(BookingCreate.model_fields) - set(MARKETPLACE_FIELDS) == {
        "service_id",
        "provider_id",
        "scheduled_at",
    }


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.SERVICE])
def test_operators_and_the_marketplace_decide(role: Role) -> None:
    caller = Principal(user_id="x", role=role, wallet=None)
    assert creation_refusal(caller, booking_body()) is None


def test_a_party_is_told_each_field_it_sent_and_may_not_set() -> None:
    refusal = creation_refusal(CUSTOMER_CALLER, booking_body(inviter_wallet=CUSTOMER))
    assert refusal is not None
    assert (refusal.status, refusal.code) == (403, "marketplace_only")
    assert [d.field for d in refusal.details] == [f"body.{name}" for name in MARKETPLACE_FIELDS]
    assert "a customer cannot set amount, provider_wallet, inviter_wallet" in refusal.message


@pytest.mark.parametrize("body", [{"service_id": "x"}, None, [], "amount"])
def test_a_party_sending_no_terms_is_still_refused(body: object) -> None:
    provider = Principal(user_id="p", role=Role.PROVIDER, wallet=CUSTOMER)
    refusal = creation_refusal(provider, body)
    assert refusal is not None
    assert refusal.details == []
    assert "bookings are created by the marketplace" in refusal.message
