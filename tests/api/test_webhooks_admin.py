"""`/admin/webhooks` (operators only) and suspicious activity written to the webhook outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from api.suspicious import SuspiciousActivity
from api.webhook_notifier import OutboxNotifier
from db.webhook_models import WebhookDelivery, WebhookOutbox, WebhookSecret
from tests.api.helpers import CUSTOMER_AUTH, OPERATOR_AUTH, PROVIDER_AUTH, booking_body, serve

pytestmark = pytest.mark.integration
URL = "https://marketplace.example/hooks/bookme"


async def test_operators_manage_endpoints_and_secrets_are_shown_once(factory, sessions):
    async with serve(factory.app()) as client:
        assert (
            await client.post("/admin/webhooks/endpoints", json={"url": URL}, headers=CUSTOMER_AUTH)
        ).status_code == 403
        bad = await client.post(
            "/admin/webhooks/endpoints", json={"url": "file:///etc/passwd"}, headers=OPERATOR_AUTH
        )
        assert bad.status_code == 422
        created = await client.post(
            "/admin/webhooks/endpoints",
            json={"url": URL, "description": "shop"},
            headers=OPERATOR_AUTH,
        )
        assert created.status_code == 201
        endpoint, secret = created.json()["endpoint_id"], created.json()["secret"]
        assert secret.startswith("whsec_")

        listed = await client.get("/admin/webhooks/endpoints", headers=OPERATOR_AUTH)
        assert [e["url"] for e in listed.json()] == [URL]
        assert secret not in listed.text

        rotated = await client.post(
            f"/admin/webhooks/endpoints/{endpoint}/rotate", headers=OPERATOR_AUTH
        )
        assert rotated.status_code == 200
        assert rotated.json()["secret"] not in (secret, None)
        assert rotated.json()["previous_expires_at"] is not None
        listed = await client.get("/admin/webhooks/endpoints", headers=OPERATOR_AUTH)
        assert listed.json()[0]["active_secrets"] == 2  # both sign during the overlap

        missing = await client.post(
            f"/admin/webhooks/endpoints/{uuid.uuid4()}/rotate", headers=OPERATOR_AUTH
        )
        assert missing.status_code == 404
        empty = await client.post("/admin/webhooks/replay", json={}, headers=OPERATOR_AUTH)
        assert empty.status_code == 400
        assert (
            await client.delete(f"/admin/webhooks/endpoints/{endpoint}", headers=OPERATOR_AUTH)
        ).status_code == 204
        assert (
            await client.delete(f"/admin/webhooks/endpoints/{endpoint}", headers=OPERATOR_AUTH)
        ).status_code == 404
    async with sessions() as session:
        stored = (await session.execute(select(WebhookSecret.ciphertext))).scalars().all()
    assert len(stored) == 2
    assert all(secret.encode() not in c for c in stored)


async def test_suspicious_activity_becomes_one_outbox_event_per_user_and_window(factory, sessions):
    async with serve(factory.app()) as client:
        created = await client.post(
            "/admin/webhooks/endpoints", json={"url": URL}, headers=OPERATOR_AUTH
        )
        assert created.status_code == 201
    case = SuspiciousActivity(
        user_id="cust-9",
        role="customer",
        refusals=6,
        window_seconds=300,
        route="/bookings/{booking_id}/payment-authorization",
        status=403,
        code="wrong_caller",
        booking_id="not-a-uuid",
        detected_at=datetime.now(UTC),
    )
    notifier = OutboxNotifier(sessions)
    await notifier.notify(case)
    await notifier.notify(case)  # the same case again: no second event
    async with sessions() as session:
        events = (await session.execute(select(WebhookOutbox))).scalars().all()
        deliveries = (await session.execute(select(WebhookDelivery))).scalars().all()
    assert [e.event_type for e in events] == ["security.suspicious_activity"]
    assert events[0].payload["data"]["user_id"] == "cust-9"
    assert len(deliveries) == 1


async def test_replay_through_the_api_queues_deliveries(factory, sessions):
    async with serve(factory.app()) as client:
        await client.post("/admin/webhooks/endpoints", json={"url": URL}, headers=OPERATOR_AUTH)
        await OutboxNotifier(sessions).notify(
            SuspiciousActivity(
                user_id="prov-9", role="provider", refusals=6, window_seconds=300,
                route="/x", status=403, code="c", booking_id=None, detected_at=datetime.now(UTC),
            )
        )  # fmt: skip
        async with sessions() as session:
            event_id = (await session.execute(select(WebhookOutbox.event_id))).scalar_one()
        replayed = await client.post(
            "/admin/webhooks/replay", json={"event_id": str(event_id)}, headers=OPERATOR_AUTH
        )
    assert replayed.status_code == 202
    assert replayed.json() == {"queued": 1}


async def test_the_api_s_default_notifier_writes_the_raised_case_to_the_outbox(
    factory, sessions, worker
):
    async with serve(factory.app()) as client:  # no notifier passed: the outbox one
        created = await client.post("/bookings", json=booking_body(), headers=OPERATOR_AUTH)
        booking = created.json()["id"]
        for _ in range(6):  # the sixth refusal in the window is raised
            refused = await client.post(
                f"/bookings/{booking}/payment-authorization", headers=PROVIDER_AUTH
            )
            assert refused.status_code == 403
    async with sessions() as session:
        events = (await session.execute(select(WebhookOutbox))).scalars().all()
    suspicious = [e for e in events if e.event_type == "security.suspicious_activity"]
    assert len(suspicious) == 1
    assert suspicious[0].payload["booking_id"] == booking
    assert suspicious[0].payload["data"]["user_id"] == "prov-1"
