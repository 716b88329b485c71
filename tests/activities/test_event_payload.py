"""One stored shape per chain event: the listener and a workflow's activity write the same payload.

Whichever sees an event first writes its `blockchain_events` row (the listener storing it, or the
booking store marking an event a poll found); the payload must not depend on who won.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from eth_abi.abi import encode
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities import BookingStore
from chain.events import BOOKING_CANCELLED_TOPIC, BOOKING_CREATED_AND_PAID_TOPIC
from listener.observed import ObservedEvent, observe
from listener.store import ListenerStore
from workflows.types import OrphanRecord

from .conftest import ESCROW

CHAIN_ID = 31337
CUSTOMER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
PROVIDER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
ZERO = "0x0000000000000000000000000000000000000000"
BOOKING = "0x" + "ef" * 32


def _raw_log(topic0: str, data: bytes, tx_byte: str, log_index: int) -> dict[str, Any]:
    return {
        "address": ESCROW,
        "topics": [topic0, BOOKING],
        "data": "0x" + data.hex(),
        "transactionHash": "0x" + tx_byte * 32,
        "logIndex": hex(log_index),
        "blockNumber": hex(42),
        "blockHash": "0x" + "cd" * 32,
    }


PAYMENT = observe(
    _raw_log(
        BOOKING_CREATED_AND_PAID_TOPIC,
        encode(
            ["address", "address", "address", "uint256", "uint256", "uint256"],
            [CUSTOMER, PROVIDER, ZERO, 2**255 + 7, 1000, 0],
        ),
        "ab",
        3,
    ),
    CHAIN_ID,
)
REFUND = observe(
    _raw_log(
        BOOKING_CANCELLED_TOPIC,
        encode(
            ["address", "uint256", "uint256", "uint256", "uint256", "string"],
            [CUSTOMER, 2**255 + 7, 0, 0, 0, "orphan_refund"],
        ),
        "ba",
        0,
    ),
    CHAIN_ID,
)


async def _payloads(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    async with sessions.begin() as session:
        rows = await session.execute(
            text("SELECT event_type, payload FROM blockchain_events ORDER BY event_type")
        )
        payloads = {str(kind): payload for kind, payload in rows}
        await session.execute(text("DELETE FROM blockchain_events"))
    return payloads


async def test_listener_and_booking_store_write_the_same_payload(
    sessions: async_sessionmaker[AsyncSession], store: BookingStore
) -> None:
    events: list[ObservedEvent] = [PAYMENT, REFUND]
    engine = sessions.kw["bind"]
    listener = ListenerStore(engine, chain_id=CHAIN_ID, contract_address=ESCROW)
    await listener.store_events(events, {})
    stored_by_listener = await _payloads(sessions)

    await store.record_orphan(
        OrphanRecord(
            chain_booking_id=BOOKING,
            action="refunded",
            payment=PAYMENT.signal,
            refund=REFUND.signal,
            refund_tx_hash=REFUND.signal.identity.tx_hash,
            occurred_at=datetime.now(UTC),
        )
    )
    stored_by_activity = await _payloads(sessions)

    assert stored_by_listener.keys() == {"BookingCreatedAndPaid", "BookingCancelled"}
    assert stored_by_activity == stored_by_listener
    assert stored_by_listener["BookingCreatedAndPaid"] == {
        "booking_id": BOOKING,
        "customer": CUSTOMER,
        "provider": PROVIDER,
        "inviter": ZERO,
        "amount": str(2**255 + 7),
        "platform_fee_rate": "1000",
        "inviter_fee_rate": "0",
    }
