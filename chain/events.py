"""The escrow's three booking events as typed values, decoded from raw logs without web3.

``bookingId`` is indexed (topic1) in all three; every other field is in the data. Values come
out normalised: lowercase 0x hashes, checksummed addresses, ints. The two all-static events
are sliced word by word (padding checked); ``BookingCancelled`` (a string) goes through eth-abi.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from eth_abi.abi import decode as abi_decode
from eth_utils.crypto import keccak

from chain.errors import EventDecodeError
from chain.event_key import event_key
from chain.hexutil import address, hash32, to_bytes, to_hex, to_int

BOOKING_CREATED_AND_PAID_SIGNATURE = (
    "BookingCreatedAndPaid(bytes32,address,address,address,uint256,uint256,uint256)"
)
SERVICE_COMPLETED_SIGNATURE = "ServiceCompleted(bytes32,address,uint256,uint256,uint256)"
BOOKING_CANCELLED_SIGNATURE = (
    "BookingCancelled(bytes32,address,uint256,uint256,uint256,uint256,string)"
)

BOOKING_CREATED_AND_PAID_TOPIC = to_hex(keccak(text=BOOKING_CREATED_AND_PAID_SIGNATURE))
SERVICE_COMPLETED_TOPIC = to_hex(keccak(text=SERVICE_COMPLETED_SIGNATURE))
BOOKING_CANCELLED_TOPIC = to_hex(keccak(text=BOOKING_CANCELLED_SIGNATURE))

# For eth_getLogs: topics=[ESCROW_EVENT_TOPICS] matches any of the three.
ESCROW_EVENT_TOPICS: tuple[str, ...] = (
    BOOKING_CREATED_AND_PAID_TOPIC,
    SERVICE_COMPLETED_TOPIC,
    BOOKING_CANCELLED_TOPIC,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class EventIdentity:
    """``(chain_id, tx_hash, log_index)``: the dedupe key of an event everywhere."""

    chain_id: int
    tx_hash: str
    log_index: int

    @property
    def key(self) -> str:
        return event_key(self.chain_id, self.tx_hash, self.log_index)


@dataclass(frozen=True, kw_only=True, slots=True)
class LogPosition:
    """The block an event was seen in; the hash changes when a reorg re-includes it."""

    block_number: int
    block_hash: str


@dataclass(frozen=True, kw_only=True, slots=True)
class BookingCreatedAndPaid:
    """The customer paid into escrow; fee rates are the ones signed (bps)."""

    NAME: ClassVar[str] = "BookingCreatedAndPaid"

    identity: EventIdentity
    position: LogPosition
    contract: str
    booking_id: str
    customer: str
    provider: str
    inviter: str
    amount: int
    platform_fee_rate: int
    inviter_fee_rate: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ServiceCompleted:
    """Escrow released: provider, platform and inviter legs (owed if a transfer was refused)."""

    NAME: ClassVar[str] = "ServiceCompleted"

    identity: EventIdentity
    position: LogPosition
    contract: str
    booking_id: str
    provider: str
    provider_amount: int
    platform_fee: int
    inviter_fee: int


@dataclass(frozen=True, kw_only=True, slots=True)
class BookingCancelled:
    """Escrow split by a cancellation (or an operator's full refund)."""

    NAME: ClassVar[str] = "BookingCancelled"

    identity: EventIdentity
    position: LogPosition
    contract: str
    booking_id: str
    cancelled_by: str
    customer_amount: int
    provider_amount: int
    platform_amount: int
    inviter_amount: int
    reason: str


DecodedEvent = BookingCreatedAndPaid | ServiceCompleted | BookingCancelled

# Number of 32-byte data words of the two all-static events (decoded by slicing: the
# listener's catch-up rate depends on this); BookingCancelled has a string, eth-abi decodes it.
_STATIC_WORDS = {BOOKING_CREATED_AND_PAID_TOPIC: 6, SERVICE_COMPLETED_TOPIC: 4}
_CANCELLED_TYPES = ("address", "uint256", "uint256", "uint256", "uint256", "string")
_KNOWN_TOPICS = frozenset(ESCROW_EVENT_TOPICS)
_ADDRESS_PADDING = bytes(12)


def _static_words(topic0: str, data: bytes) -> list[bytes]:
    count = _STATIC_WORDS[topic0]
    if len(data) != 32 * count:
        raise EventDecodeError(f"expected {32 * count} data bytes, got {len(data)}")
    return [data[i : i + 32] for i in range(0, len(data), 32)]


def _word_address(word: bytes) -> str:
    if word[:12] != _ADDRESS_PADDING:
        raise EventDecodeError("address word with non-zero padding")
    return address(word[12:])


def _word_uint(word: bytes) -> int:
    return int.from_bytes(word, "big")


def is_escrow_event(raw_log: Mapping[str, Any]) -> bool:
    """Whether the log's topic0 is one of the three booking events."""
    topics: Sequence[Any] = raw_log.get("topics") or ()
    return len(topics) > 0 and str(topics[0]).lower() in _KNOWN_TOPICS


def _common_fields(raw_log: Mapping[str, Any], chain_id: int) -> tuple[str, bytes, dict[str, Any]]:
    """(topic0, data, the fields every escrow event has), or EventDecodeError."""
    try:
        topics = [str(t).lower() for t in raw_log["topics"]]
        if not topics or topics[0] not in _KNOWN_TOPICS:
            raise EventDecodeError(f"not an escrow booking event (topic0 {topics[:1]})")
        if len(topics) != 2:
            raise EventDecodeError(f"expected 2 topics, got {len(topics)}")
        common: dict[str, Any] = {
            "identity": EventIdentity(
                chain_id=chain_id,
                tx_hash=hash32(raw_log["transactionHash"]),
                log_index=to_int(raw_log["logIndex"]),
            ),
            "position": LogPosition(
                block_number=to_int(raw_log["blockNumber"]),
                block_hash=hash32(raw_log["blockHash"]),
            ),
            "contract": address(raw_log["address"]),
            "booking_id": hash32(topics[1]),
        }
        return topics[0], to_bytes(raw_log["data"]), common
    except EventDecodeError:
        raise
    except Exception as exc:  # missing keys, bad hex, wrong lengths: one error type out
        raise EventDecodeError(f"malformed escrow log: {type(exc).__name__}: {exc}") from exc


def _cancelled(data: bytes, common: dict[str, Any]) -> BookingCancelled:
    try:
        values = abi_decode(_CANCELLED_TYPES, data)
    except Exception as exc:  # eth-abi raises several unrelated types on bad input
        raise EventDecodeError(f"malformed BookingCancelled data: {exc}") from exc
    cancelled_by, customer_amount, provider_amount, platform_amount, inviter_amount, reason = values
    return BookingCancelled(
        **common,
        cancelled_by=address(cancelled_by),
        customer_amount=customer_amount,
        provider_amount=provider_amount,
        platform_amount=platform_amount,
        inviter_amount=inviter_amount,
        reason=reason,
    )


def decode_log(raw_log: Mapping[str, Any], chain_id: int) -> DecodedEvent:
    """Decode one raw JSON-RPC log; EventDecodeError if it is not a well-formed escrow event."""
    topic0, data, common = _common_fields(raw_log, chain_id)
    if topic0 == BOOKING_CREATED_AND_PAID_TOPIC:
        customer, provider, inviter, amount, platform_rate, inviter_rate = _static_words(
            topic0, data
        )
        return BookingCreatedAndPaid(
            **common,
            customer=_word_address(customer),
            provider=_word_address(provider),
            inviter=_word_address(inviter),
            amount=_word_uint(amount),
            platform_fee_rate=_word_uint(platform_rate),
            inviter_fee_rate=_word_uint(inviter_rate),
        )
    if topic0 == SERVICE_COMPLETED_TOPIC:
        provider, provider_amount, platform_fee, inviter_fee = _static_words(topic0, data)
        return ServiceCompleted(
            **common,
            provider=_word_address(provider),
            provider_amount=_word_uint(provider_amount),
            platform_fee=_word_uint(platform_fee),
            inviter_fee=_word_uint(inviter_fee),
        )
    return _cancelled(data, common)


def decode_escrow_logs(
    raw_logs: Iterable[Mapping[str, Any]], chain_id: int, contract: str | None = None
) -> list[DecodedEvent]:
    """The escrow events among logs (e.g. a receipt's), skipping other contracts and events."""
    wanted = address(contract) if contract is not None else None
    events: list[DecodedEvent] = []
    for raw in raw_logs:
        if not is_escrow_event(raw):
            continue
        if wanted is not None and address(raw["address"]) != wanted:
            continue
        events.append(decode_log(raw, chain_id))
    return events
