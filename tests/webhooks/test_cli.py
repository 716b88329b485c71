"""`bookme webhooks ...` in-process: secrets shown once and stored encrypted, rotation, replay."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bookme.settings import Settings
from db.webhook_models import WebhookOutbox, WebhookSecret
from tests.ops.conftest import run_cli
from tests.webhooks.flows import complete, drain, expected_signature, paid_booking, signatures

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(sessions, database_url) -> Settings:
    # Temporal unreachable on purpose: replay is committed in Postgres, waking the relay is a bonus.
    return Settings(_env_file=None, database_url=database_url, temporal_address="127.0.0.1:1")


async def test_add_shows_the_secret_once_and_stores_it_encrypted(settings, sessions, receiver):
    added = await run_cli(settings, "webhooks", "add", receiver.url, "--description", "shop")
    assert added.code == 0
    secret = re.search(r"(whsec_\S+)", added.out).group(1)  # type: ignore[union-attr]
    async with sessions() as session:
        (ciphertext,) = (await session.execute(select(WebhookSecret.ciphertext))).scalars()
    assert secret.encode() not in ciphertext
    listed = await run_cli(settings, "webhooks", "list")
    assert receiver.url in listed.out
    assert "whsec_" not in listed.out
    refused = await run_cli(settings, "webhooks", "add", "ftp://example.com/x")
    assert refused.code == 2


async def test_rotation_signs_with_both_secrets_during_the_overlap(
    settings, store, receiver, dispatcher
):
    added = await run_cli(settings, "webhooks", "add", receiver.url)
    endpoint = re.search(r"endpoint (\S+)", added.out).group(1)  # type: ignore[union-attr]
    old = re.search(r"(whsec_\S+)", added.out).group(1)  # type: ignore[union-attr]
    rotated = await run_cli(settings, "webhooks", "rotate", endpoint)
    assert rotated.code == 0
    new = re.search(r"(whsec_\S+)", rotated.out).group(1)  # type: ignore[union-attr]
    assert new != old

    await paid_booking(store)
    await drain(dispatcher, lambda: len(receiver.delivered()) == 1, "delivered")
    request = receiver.received[0]
    timestamp, v1s = signatures(request.headers["BookMe-Signature"])
    assert v1s == [
        expected_signature(new, timestamp, request.body),
        expected_signature(old, timestamp, request.body),
    ]


async def test_replay_by_event_booking_and_time_and_remove(
    settings, sessions, store, receiver, dispatcher
):
    added = await run_cli(settings, "webhooks", "add", receiver.url)
    endpoint = re.search(r"endpoint (\S+)", added.out).group(1)  # type: ignore[union-attr]
    booking = await paid_booking(store)
    await complete(store, booking)
    await drain(dispatcher, lambda: len(receiver.delivered()) == 2, "both delivered")
    async with sessions() as session:
        first = (
            (await session.execute(select(WebhookOutbox).order_by(WebhookOutbox.id)))
            .scalars()
            .first()
        )
    assert first is not None

    by_event = await run_cli(settings, "webhooks", "replay", "--event", str(first.event_id))
    assert "queued 1 deliveries again" in by_event.out
    by_booking = await run_cli(settings, "webhooks", "replay", "--booking", booking.booking_id)
    assert "queued 2 deliveries again" in by_booking.out
    since = first.created_at.isoformat()
    by_time = await run_cli(settings, "webhooks", "replay", "--since", since)
    assert "queued 2 deliveries again" in by_time.out
    await drain(dispatcher, lambda: len(receiver.delivered()) == 4, "replays delivered")
    # The replayed booking's events arrive in order again, with their original ids.
    replayed = receiver.delivered()[2:]
    assert [e["type"] for e in replayed] == ["booking.paid", "booking.completed"]
    assert replayed[0]["id"] == str(first.event_id)
    nothing = await run_cli(settings, "webhooks", "replay")
    assert nothing.code == 2

    assert (await run_cli(settings, "webhooks", "remove", endpoint)).code == 0
    assert receiver.url not in (await run_cli(settings, "webhooks", "list")).out
    assert (await run_cli(settings, "webhooks", "remove", endpoint)).code == 2
