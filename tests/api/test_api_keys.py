"""Server-to-server API keys: created by the CLI (shown once, stored hashed), accepted as a
bearer credential for the `service` role, rotated with an overlap, revoked (real Postgres)."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bookme.cli import build_parser
from bookme.ops.api_keys import run_api_key_command_async
from bookme.settings import Settings
from db.api_keys import create_api_key, expire_api_key, revoke_api_key, verify_api_key
from db.identity_models import ApiKey
from tests.api.conftest import ApiFactory
from tests.api.fakes import FakeChain
from tests.api.helpers import CUSTOMER_AUTH, OPERATOR_AUTH, SERVICE_AUTH, booking_body, serve

pytestmark = pytest.mark.integration
KEY = re.compile(r"^(bm_live_([0-9a-f]{12})_\S+)$", re.M)


async def bookme_api_keys(settings: Settings, *argv: str) -> tuple[int, str]:
    args = build_parser().parse_args(["api-keys", *argv])
    out = io.StringIO()
    return await run_api_key_command_async(args, settings, out), out.getvalue()


async def test_a_key_is_stored_only_as_its_hash_and_checked_whole(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = datetime.now(UTC)
    async with sessions.begin() as session:
        created = await create_api_key(session, subject="marketplace", name="prod", expires_at=None)
    async with sessions() as session:
        row = await session.get(ApiKey, created.key_id)
        assert row is not None
        assert row.secret_sha256 == hashlib.sha256(created.key.encode()).hexdigest()
        assert created.key not in repr(row.__dict__)
        assert await verify_api_key(session, created.key, now=now) is not None
        # The last character changed (to one it is not: "A" failed one run in ~60).
        changed = created.key[:-1] + ("B" if created.key.endswith("A") else "A")
        for wrong in (changed, created.key + "x", "bm_live_nothing"):
            assert await verify_api_key(session, wrong, now=now) is None
    async with sessions.begin() as session:
        assert await expire_api_key(session, created.key_id, at=now + timedelta(hours=1))
    async with sessions() as session:
        assert await verify_api_key(session, created.key, now=now) is not None
        assert await verify_api_key(session, created.key, now=now + timedelta(hours=2)) is None
    async with sessions.begin() as session:
        assert await revoke_api_key(session, created.key_id, now=now)
        assert not await revoke_api_key(session, "0" * 12, now=now)
    async with sessions() as session:
        assert await verify_api_key(session, created.key, now=now) is None


async def test_the_cli_key_creates_bookings_survives_rotation_until_revoked(
    factory: ApiFactory, worker: FakeChain, sessions: async_sessionmaker[AsyncSession]
) -> None:
    settings = factory.settings
    code, out = await bookme_api_keys(settings, "create", "--name", "marketplace-prod")
    assert code == 0
    match = KEY.search(out)
    assert match is not None, out
    key, key_id = match.groups()
    async with serve(factory.app()) as client:
        auth = {"Authorization": f"Bearer {key}"}
        created = await client.post("/bookings", json=booking_body(), headers=auth)
        assert created.status_code == 201, created.text

        code, out = await bookme_api_keys(settings, "rotate", key_id, "--overlap-hours", "1")
        new_match = KEY.search(out)
        assert code == 0
        assert new_match is not None
        new_key, new_id = new_match.groups()
        # Both work during the overlap, as the same caller: a retry with the same
        # Idempotency-Key after the switch finds the same booking.
        headers = {"Idempotency-Key": "order-17"}
        first = await client.post("/bookings", json=booking_body(), headers={**auth, **headers})
        again = await client.post(
            "/bookings",
            json=booking_body(scheduled_at=first.json()["scheduled_at"]),
            headers={"Authorization": f"Bearer {new_key}", **headers},
        )
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"]

        code, listed = await bookme_api_keys(settings, "list")
        assert code == 0
        assert {key_id, new_id} <= set(listed.split())
        assert key not in listed
        assert (await bookme_api_keys(settings, "revoke", key_id))[0] == 0
        refused = await client.post("/bookings", json=booking_body(), headers=auth)
        assert (refused.status_code, refused.json()["code"]) == (401, "invalid_api_key")
        assert "revoked" in (await bookme_api_keys(settings, "list"))[1]
    assert (await bookme_api_keys(settings, "revoke", "ffffffffffff"))[0] == 2
    async with sessions() as session:
        subjects = set((await session.scalars(select(ApiKey.subject))).all())
    assert subjects == {"marketplace"}


async def test_operators_manage_keys_over_the_admin_api_and_nobody_else_does(
    factory: ApiFactory, worker: FakeChain
) -> None:
    async with serve(factory.app()) as client:
        for auth in (CUSTOMER_AUTH, SERVICE_AUTH):
            refused = await client.post("/admin/api-keys", json={}, headers=auth)
            assert (refused.status_code, refused.json()["code"]) == (403, "operator_required")
        created = await client.post(
            "/admin/api-keys",
            json={"name": "staging", "expires_in_days": 30},
            headers=OPERATOR_AUTH,
        )
        assert created.status_code == 201, created.text
        assert created.headers["Cache-Control"] == "no-store"
        key, key_id = created.json()["key"], created.json()["key_id"]
        assert created.json()["subject"] == "marketplace"

        auth = {"Authorization": f"Bearer {key}"}
        assert (
            await client.post("/bookings", json=booking_body(), headers=auth)
        ).status_code == 201
        listed = await client.get("/admin/api-keys", headers=OPERATOR_AUTH)
        assert [k["key_id"] for k in listed.json()["items"]] == [key_id]
        assert key not in listed.text
        assert listed.json()["items"][0]["live"] is True

        revoked = await client.delete(f"/admin/api-keys/{key_id}", headers=OPERATOR_AUTH)
        assert revoked.status_code == 204
        after = await client.post("/bookings", json=booking_body(), headers=auth)
        assert (after.status_code, after.json()["code"]) == (401, "invalid_api_key")
        again = await client.delete("/admin/api-keys/ffffffffffff", headers=OPERATOR_AUTH)
        assert (again.status_code, again.json()["code"]) == (404, "api_key_not_found")
