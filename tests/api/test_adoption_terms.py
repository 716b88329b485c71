"""The terms of an adopted booking, from the row and an in-memory directory, without a server."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from api.adoption import MarketplaceBooking, adoption_terms
from api.auth import Principal, Role
from api.errors import ApiError
from api.money import exact_units
from bookme.settings import Settings
from chain.eip712 import chain_booking_id
from db.directory_memory import InMemoryDirectory
from tests.api.helpers import CUSTOMER, OTHER_CUSTOMER, OTHER_PROVIDER, PROVIDER
from workflows.types import BookingInput

INVITER = "0x976EA74026E726554dB657fA54763abd0C3a0aa9"
NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
SETTINGS = Settings(_env_file=None)
ROW = MarketplaceBooking(
    id=uuid.UUID(int=7),
    service_id="haircut",
    customer_id="carol",
    provider_id="pat",
    scheduled_at=NOW + timedelta(days=2, microseconds=123),
    status="PENDING_PAYMENT",
    amount_units=None,
    amount="25.500000",
    chain_booking_id=None,
)
CAROL = Principal(user_id="carol", role=Role.CUSTOMER, wallet=CUSTOMER)


def directory() -> InMemoryDirectory:
    users = InMemoryDirectory()
    users.add("ivy", wallets=(INVITER,))
    users.add("pat", wallets=(PROVIDER,))
    users.add("quinn")
    users.add("carol", wallets=(CUSTOMER, OTHER_CUSTOMER), referrer_id="ivy")
    users.add("dave", wallets=(OTHER_PROVIDER,))
    return users


async def terms_for(
    row: MarketplaceBooking = ROW,
    caller: Principal = CAROL,
    users: InMemoryDirectory | None = None,
) -> tuple[BookingInput, str]:
    return await adoption_terms(row, caller, users or directory(), SETTINGS, NOW)


async def refusal(**kwargs: object) -> ApiError:
    with pytest.raises(ApiError) as refused:
        await terms_for(**kwargs)  # type: ignore[arg-type]
    return refused.value


async def test_the_terms_come_from_the_row_the_directory_and_the_policy() -> None:
    booking, paying = await adoption_terms(ROW, CAROL, directory(), SETTINGS, NOW)
    assert paying == CUSTOMER
    assert booking.booking_id == str(ROW.id)
    assert booking.chain_booking_id == chain_booking_id(ROW.id)
    assert (booking.customer_wallet, booking.provider_wallet) == (CUSTOMER, PROVIDER)
    assert booking.inviter_wallet == INVITER
    assert booking.amount_units == 25_500_000
    assert booking.scheduled_at == (NOW + timedelta(days=2)).replace(microsecond=0)
    assert (booking.customer_id, booking.provider_id, booking.service_id) == (
        "carol",
        "pat",
        "haircut",
    )
    assert booking.policy == SETTINGS.booking_policy()


async def test_the_customer_is_known_by_id_or_by_a_wallet_the_directory_lists() -> None:
    # By a listed wallet under another subject: pays from that wallet.
    by_wallet = Principal(user_id="did:privy:carol", role=Role.USER, wallet=OTHER_CUSTOMER)
    assert (await terms_for(caller=by_wallet))[1] == OTHER_CUSTOMER
    # By id, with an unlisted wallet of their own (proof is checked where required).
    own = Principal(user_id="carol", role=Role.CUSTOMER, wallet=OTHER_PROVIDER)
    assert (await terms_for(caller=own))[1] == OTHER_PROVIDER
    # By id, with no wallet in the token: the directory's primary wallet.
    bare = Principal(user_id="carol", role=Role.USER, wallet=None)
    assert (await terms_for(caller=bare))[1] == CUSTOMER


@pytest.mark.parametrize(
    "caller",
    [
        Principal(user_id="dave", role=Role.CUSTOMER, wallet=OTHER_PROVIDER),
        Principal(user_id="carol", role=Role.PROVIDER, wallet=CUSTOMER),
        Principal(user_id="carol", role=Role.OPERATOR, wallet=None),
        Principal(user_id="marketplace", role=Role.SERVICE, wallet=CUSTOMER),
    ],
    ids=["another-user", "as-provider", "operator", "service"],
)
async def test_nobody_but_the_customer_adopts(caller: Principal) -> None:
    refused = await refusal(caller=caller)
    assert (refused.status, refused.code) == (403, "not_a_party")


def _field(error: ApiError) -> str:
    assert error.status == 409, error
    (detail,) = error.details
    assert detail.message == error.message
    return detail.field


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"status": "PAID"}, "not_payable", "status"),
        ({"status": "confirmed"}, "not_payable", "status"),
        ({"provider_id": "quinn"}, "directory_missing", "provider_wallet"),
        ({"provider_id": "nobody"}, "directory_missing", "provider_id"),
        ({"provider_id": None}, "directory_missing", "provider_id"),
        ({"provider_id": "ivy"}, "self_referral", "inviter_wallet"),
        ({"amount": "1.2345678"}, "amount_not_exact", "amount"),
        ({"amount": "0"}, "amount_not_exact", "amount"),
        ({"amount": "-5"}, "amount_not_exact", "amount"),
        ({"amount": "NaN"}, "amount_not_exact", "amount"),
        ({"amount": None}, "amount_not_exact", "amount"),
        ({"amount": "100000000"}, "amount_over_cap", "amount"),
        ({"scheduled_at": NOW - timedelta(minutes=1)}, "not_payable", "scheduled_at"),
        ({"scheduled_at": None}, "booking_incomplete", "scheduled_at"),
        ({"service_id": None}, "booking_incomplete", "service_id"),
        ({"chain_booking_id": "0x" + "ab" * 32}, "not_payable", "blockchain_booking_id"),
    ],
)
async def test_each_refusal_names_its_field(
    change: dict[str, object], code: str, field: str
) -> None:
    refused = await refusal(row=replace(ROW, **change))  # type: ignore[arg-type]
    assert refused.code == code
    assert _field(refused) == field


async def test_directory_gaps_about_the_customer_and_the_referrer_are_named() -> None:
    users = directory()
    users.add("carol", wallets=(CUSTOMER,), referrer_id="quinn")  # a referrer with no wallet
    assert _field(await refusal(users=users)) == "inviter_wallet"
    users.add("carol", wallets=(CUSTOMER,), referrer_id="carol")  # referred by herself
    refused = await refusal(users=users)
    assert (refused.code, _field(refused)) == ("self_referral", "inviter_wallet")
    users.add("carol")  # no wallet, and a token naming none
    bare = Principal(user_id="carol", role=Role.USER, wallet=None)
    assert _field(await refusal(users=users, caller=bare)) == "customer_wallet"
    missing = await refusal(
        row=replace(ROW, customer_id="nobody"), caller=replace(CAROL, user_id="nobody")
    )
    assert (missing.code, _field(missing)) == ("directory_missing", "customer_id")


async def test_a_customer_paying_the_provider_from_the_same_wallet_is_refused() -> None:
    users = directory()
    users.add("pat", wallets=(CUSTOMER,))
    refused = await refusal(users=users)
    assert (refused.code, _field(refused)) == ("same_party", "provider_wallet")


async def test_the_price_prefers_the_rows_own_base_units() -> None:
    booking, _ = await terms_for(row=replace(ROW, amount_units=7, amount="999"))
    assert booking.amount_units == 7


@pytest.mark.parametrize(
    ("whole", "units"),
    [
        ("25.5", 25_500_000),
        ("25.500000000", 25_500_000),
        ("0.000001", 1),
        ("1E+3", 1_000_000_000),
        ("1.2345678", None),
        ("0", None),
        ("-0", None),
        ("-1", None),
        ("NaN", None),
        ("Infinity", None),
        ("1E+100", None),
    ],
)
def test_whole_usdc_converts_to_base_units_exactly_or_not_at_all(
    whole: str, units: int | None
) -> None:
    assert exact_units(Decimal(whole)) == units
