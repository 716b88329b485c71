"""Pure webhook rules: which events a transition announces, the backoff, the signature header."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from activities.webhooks import DeliveryConfig, signature_header
from bookme.settings import Settings
from db.outbox import WebhookEventType as E
from db.outbox import transition_events
from db.webhook_endpoints import check_url
from workflows.audit import AuditAction as A
from workflows.types import BookingStatus as S
from workflows.types import ChainEventKind, EventOutcome, Settlement, TransitionRecord


def _record(frm: S, to: S, action: A, **extra: object) -> TransitionRecord:
    return TransitionRecord(
        booking_id="b",
        dedupe_key="k",
        from_status=frm,
        to_status=to,
        action=action,
        occurred_at=datetime.now(UTC),
        **extra,  # type: ignore[arg-type]
    )


REFUND = Settlement(kind=ChainEventKind.CANCELLATION, customer_amount=5)


@pytest.mark.parametrize(
    ("record", "events"),
    [
        (_record(S.PENDING_PAYMENT, S.PAID, A.PAYMENT_CONFIRMED), [E.BOOKING_PAID]),
        (_record(S.PAID, S.COMPLETED, A.SERVICE_COMPLETED), [E.BOOKING_COMPLETED]),
        (_record(S.PENDING_PAYMENT, S.CANCELLED, A.PAYMENT_TIMEOUT), [E.BOOKING_CANCELLED]),
        (
            _record(S.PAID, S.CANCELLED, A.BOOKING_CANCELLED, settlement=REFUND),
            [E.BOOKING_CANCELLED, E.BOOKING_REFUNDED],
        ),
        (_record(S.FAILED, S.FAILED, A.REFUND_RECORDED, settlement=REFUND), [E.BOOKING_REFUNDED]),
        (
            _record(S.PAID, S.FAILED, A.CONTRADICTION),
            [E.BOOKING_FAILED, E.OPERATOR_ATTENTION_NEEDED],
        ),
        (_record(S.FAILED, S.FAILED, A.REFUND_FAILED), [E.OPERATOR_ATTENTION_NEEDED]),
        (_record(S.PAID, S.PAID, A.AUTO_COMPLETE_FAILED), [E.OPERATOR_ATTENTION_NEEDED]),
        (_record(S.PAID, S.PENDING_COMPLETION, A.AUTO_COMPLETE_SENT), [E.BOOKING_STATUS_CHANGED]),
        (
            _record(S.PENDING_CANCELLATION, S.PAID, A.CANCELLATION_EXPIRED),
            [E.BOOKING_STATUS_CHANGED],
        ),
        (
            _record(
                S.CANCELLED,
                S.PAID,
                A.SETTLEMENT_REORGED,
                settlement=REFUND,
                event_outcome=EventOutcome.REORGED,
            ),
            [E.BOOKING_STATUS_CHANGED],
        ),
        (_record(S.PAID, S.PAID, A.EVENT_REJECTED), []),
    ],
)
def test_each_transition_announces_what_happened(record, events):
    assert transition_events(record) == events


def test_backoff_doubles_up_to_the_cap_and_the_default_horizon_spans_days():
    config = DeliveryConfig(retry_initial_seconds=10, retry_max_seconds=3600)
    waits = [config.backoff(n) for n in (1, 2, 3, 10, 1000)]
    assert waits[:3] == [timedelta(seconds=10), timedelta(seconds=20), timedelta(seconds=40)]
    assert waits[3:] == [timedelta(seconds=3600)] * 2
    assert Settings(_env_file=None).webhook_retry_horizon_seconds >= 86400


def test_the_header_carries_one_v1_per_live_secret():
    body = b'{"id":"e"}'
    header = signature_header(["whsec_new", "whsec_old"], 1700000000, body)
    expected = [
        hmac.new(s.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
        for s in ("whsec_new", "whsec_old")
    ]
    assert header == f"t=1700000000,v1={expected[0]},v1={expected[1]}"


def test_production_endpoints_must_be_https():
    assert check_url("http://receiver.example/hooks") == "http://receiver.example/hooks"
    assert check_url("https://receiver.example/hooks", https_only=True)
    with pytest.raises(ValueError, match="https:// in production"):
        check_url("http://receiver.example/hooks", https_only=True)
    with pytest.raises(ValueError, match="absolute"):
        check_url("ftp://receiver.example/hooks")
