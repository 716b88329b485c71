"""Decoding the escrow's booking events from raw logs."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.abi import event_abi_to_log_topic
from eth_utils.address import to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from chain.artifacts import load_artifact
from chain.errors import EventDecodeError
from chain.events import (
    BOOKING_CANCELLED_TOPIC,
    BOOKING_CREATED_AND_PAID_TOPIC,
    ESCROW_EVENT_TOPICS,
    SERVICE_COMPLETED_TOPIC,
    BookingCancelled,
    BookingCreatedAndPaid,
    EventIdentity,
    LogPosition,
    ServiceCompleted,
    decode_escrow_logs,
    decode_log,
)

ESCROW = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CUSTOMER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
PROVIDER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
INVITER = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
ZERO = "0x0000000000000000000000000000000000000000"
BOOKING_ID = "0x" + "ab" * 32
TX_HASH = "0x" + "cd" * 32
BLOCK_HASH = "0x" + "ef" * 32


def raw_log(topic0: str, types: list[str], values: list[Any], **overrides: Any) -> dict[str, Any]:
    log = {
        "address": ESCROW.lower(),
        "topics": [topic0, BOOKING_ID],
        "data": "0x" + abi_encode(types, values).hex(),
        "blockNumber": "0x1f",
        "blockHash": BLOCK_HASH,
        "transactionHash": TX_HASH,
        "transactionIndex": "0x0",
        "logIndex": "0x3",
        "removed": False,
    }
    log.update(overrides)
    return log


def test_topics_are_the_artifact_events():
    abi = load_artifact("BookingEscrow").abi
    topics = {
        entry["name"]: "0x" + event_abi_to_log_topic(entry).hex()  # type: ignore[arg-type]
        for entry in abi
        if entry["type"] == "event"
    }
    assert topics["BookingCreatedAndPaid"] == BOOKING_CREATED_AND_PAID_TOPIC
    assert topics["ServiceCompleted"] == SERVICE_COMPLETED_TOPIC
    assert topics["BookingCancelled"] == BOOKING_CANCELLED_TOPIC
    assert len(set(ESCROW_EVENT_TOPICS)) == 3


def test_decodes_payment():
    log = raw_log(
        BOOKING_CREATED_AND_PAID_TOPIC,
        ["address", "address", "address", "uint256", "uint256", "uint256"],
        [CUSTOMER, PROVIDER, INVITER, 100_000_000, 500, 500],
    )
    assert decode_log(log, 31337) == BookingCreatedAndPaid(
        identity=EventIdentity(chain_id=31337, tx_hash=TX_HASH, log_index=3),
        position=LogPosition(block_number=31, block_hash=BLOCK_HASH),
        contract=ESCROW,
        booking_id=BOOKING_ID,
        customer=CUSTOMER,
        provider=PROVIDER,
        inviter=INVITER,
        amount=100_000_000,
        platform_fee_rate=500,
        inviter_fee_rate=500,
    )


def test_decodes_completion():
    log = raw_log(
        SERVICE_COMPLETED_TOPIC,
        ["address", "uint256", "uint256", "uint256"],
        [PROVIDER, 90_000_000, 10_000_000, 0],
    )
    event = decode_log(log, 8453)
    assert isinstance(event, ServiceCompleted)
    assert (event.provider, event.provider_amount, event.platform_fee, event.inviter_fee) == (
        PROVIDER,
        90_000_000,
        10_000_000,
        0,
    )
    assert event.identity.key == f"8453:{TX_HASH}:3"


def test_decodes_cancellation_with_unicode_reason():
    log = raw_log(
        BOOKING_CANCELLED_TOPIC,
        ["address", "uint256", "uint256", "uint256", "uint256", "string"],
        [CUSTOMER, 50, 25, 15, 10, "Kunde krank – storniert"],
    )
    event = decode_log(log, 31337)
    assert isinstance(event, BookingCancelled)
    assert event.cancelled_by == CUSTOMER
    assert (
        event.customer_amount,
        event.provider_amount,
        event.platform_amount,
        event.inviter_amount,
    ) == (50, 25, 15, 10)
    assert event.reason == "Kunde krank – storniert"


def test_normalises_hex_case_and_address_checksums():
    log = raw_log(
        BOOKING_CREATED_AND_PAID_TOPIC.upper().replace("0X", "0x"),
        ["address", "address", "address", "uint256", "uint256", "uint256"],
        [CUSTOMER.lower(), PROVIDER.lower(), ZERO, 1, 1000, 0],
        transactionHash=TX_HASH.upper().replace("0X", "0x"),
        blockHash=BLOCK_HASH.upper().replace("0X", "0x"),
        address=ESCROW.upper().replace("0X", "0x"),
        logIndex=3,
        blockNumber=31,
    )
    log["topics"][1] = BOOKING_ID.upper().replace("0X", "0x")
    event = decode_log(log, 31337)
    assert event.identity.tx_hash == TX_HASH
    assert event.position == LogPosition(block_number=31, block_hash=BLOCK_HASH)
    assert event.booking_id == BOOKING_ID
    assert event.contract == ESCROW
    assert isinstance(event, BookingCreatedAndPaid)
    assert (event.customer, event.provider, event.inviter) == (CUSTOMER, PROVIDER, ZERO)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda log: log.update(topics=["0x" + "00" * 32, BOOKING_ID]),
        lambda log: log.update(topics=[]),
        lambda log: log.update(topics=[SERVICE_COMPLETED_TOPIC]),
        lambda log: log.update(data="0x1234"),
        lambda log: log.update(transactionHash="0x1234"),
        lambda log: log.pop("blockHash"),
    ],
)
def test_rejects_foreign_or_malformed_logs(mutate):
    log = raw_log(
        SERVICE_COMPLETED_TOPIC,
        ["address", "uint256", "uint256", "uint256"],
        [PROVIDER, 1, 2, 3],
    )
    mutate(log)
    with pytest.raises(EventDecodeError):
        decode_log(log, 31337)


def test_decode_escrow_logs_skips_other_contracts_and_events():
    ours = raw_log(
        SERVICE_COMPLETED_TOPIC, ["address", "uint256", "uint256", "uint256"], [PROVIDER, 1, 2, 3]
    )
    other_contract = {**ours, "address": "0x" + "22" * 20}
    transfer = {**ours, "topics": ["0x" + "dd" * 32, "0x" + "00" * 32]}
    events = decode_escrow_logs([transfer, other_contract, ours], 31337, contract=ESCROW)
    assert len(events) == 1
    assert events[0].contract == ESCROW
    assert len(decode_escrow_logs([transfer, other_contract, ours], 31337)) == 2


@pytest.mark.parametrize(
    "data",
    [
        "0x" + ("00" * 11 + "01" + "11" * 20) + "00" * 32 * 3,  # dirty address padding
        "0x" + ("00" * 12 + "11" * 20) + "00" * 32 * 3 + "00",  # trailing byte
        "0x" + ("00" * 12 + "11" * 20) + "00" * 32 * 2,  # a word short
    ],
)
def test_rejects_malformed_static_data(data: str):
    log = raw_log(SERVICE_COMPLETED_TOPIC, ["uint256"], [0], data=data)
    with pytest.raises(EventDecodeError):
        decode_log(log, 31337)


addresses = st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address(b))
uints = st.integers(min_value=0, max_value=2**256 - 1)


@given(
    customer=addresses,
    provider=addresses,
    inviter=addresses,
    amount=uints,
    platform=uints,
    invite=uints,
)
def test_payment_slicing_matches_eth_abi(customer, provider, inviter, amount, platform, invite):
    log = raw_log(
        BOOKING_CREATED_AND_PAID_TOPIC,
        ["address", "address", "address", "uint256", "uint256", "uint256"],
        [customer, provider, inviter, amount, platform, invite],
    )
    event = decode_log(log, 1)
    assert isinstance(event, BookingCreatedAndPaid)
    assert (
        event.customer,
        event.provider,
        event.inviter,
        event.amount,
        event.platform_fee_rate,
        event.inviter_fee_rate,
    ) == (customer, provider, inviter, amount, platform, invite)


@given(provider=addresses, amounts=st.tuples(uints, uints, uints))
def test_completion_slicing_matches_eth_abi(provider, amounts):
    log = raw_log(
        SERVICE_COMPLETED_TOPIC,
        ["address", "uint256", "uint256", "uint256"],
        [provider, *amounts],
    )
    event = decode_log(log, 1)
    assert isinstance(event, ServiceCompleted)
    assert (event.provider, event.provider_amount, event.platform_fee, event.inviter_fee) == (
        provider,
        *amounts,
    )
