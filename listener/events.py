"""Decoded escrow logs as the signal payload workflows expect, plus what Postgres stores."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from activities.chain_events import signal_from_event
from chain.events import (
    DecodedEvent,
    decode_log,
)
from chain.hexutil import to_int
from workflows.types import (
    CancellationFields,
    ChainEventKind,
    ChainEventSignal,
    CompletionFields,
    EventIdentity,
    PaymentFields,
)


@dataclass(frozen=True, kw_only=True)
class ObservedEvent:
    """One confirmed escrow log: the signal payload, its contract and row payload."""

    signal: ChainEventSignal
    contract: str
    payload: dict[str, Any]
    block_timestamp: int | None = None

    @property
    def key(self) -> str:
        return self.signal.key

    @property
    def block_number(self) -> int:
        return self.signal.identity.block_number

    @property
    def order(self) -> tuple[int, int]:
        """Chain order: block, then log index."""
        return (self.signal.identity.block_number, self.signal.identity.log_index)


def row_payload(event: DecodedEvent) -> dict[str, Any]:
    """The decoded arguments as stored in `blockchain_events.payload`."""
    skip = {"identity", "position", "contract"}
    # JSON numbers lose uint256 precision: integers go to Postgres as decimal strings.
    return {
        name: str(value) if isinstance(value, int) else value
        for name in event.__dataclass_fields__
        if name not in skip
        for value in (getattr(event, name),)
    }


def observe(raw_log: Mapping[str, Any], chain_id: int) -> ObservedEvent:
    """Decode a raw eth_getLogs entry (EventDecodeError if it is not an escrow event)."""
    decoded = decode_log(raw_log, chain_id)
    timestamp = raw_log.get("blockTimestamp")
    return ObservedEvent(
        signal=signal_from_event(decoded),
        contract=decoded.contract,
        payload=row_payload(decoded),
        block_timestamp=to_int(timestamp) if timestamp is not None else None,
    )


def _fields(payload: Mapping[str, Any], names: tuple[str, ...], ints: frozenset[str]) -> Any:
    return {name: int(str(payload[name])) if name in ints else payload[name] for name in names}


def stored_signal(
    *,
    kind: str,
    identity: EventIdentity,
    chain_booking_id: str,
    payload: Mapping[str, Any],
) -> ChainEventSignal:
    """Rebuild the signal of a stored event (to revert it after a reorg)."""
    event_kind = ChainEventKind(kind)
    if event_kind is ChainEventKind.PAYMENT:
        return ChainEventSignal(
            kind=event_kind,
            identity=identity,
            chain_booking_id=chain_booking_id,
            payment=PaymentFields(
                **_fields(
                    payload,
                    (
                        "customer",
                        "provider",
                        "inviter",
                        "amount",
                        "platform_fee_rate",
                        "inviter_fee_rate",
                    ),
                    frozenset({"amount", "platform_fee_rate", "inviter_fee_rate"}),
                )
            ),
        )
    if event_kind is ChainEventKind.COMPLETION:
        return ChainEventSignal(
            kind=event_kind,
            identity=identity,
            chain_booking_id=chain_booking_id,
            completion=CompletionFields(
                **_fields(
                    payload,
                    ("provider", "provider_amount", "platform_fee", "inviter_fee"),
                    frozenset({"provider_amount", "platform_fee", "inviter_fee"}),
                )
            ),
        )
    amounts = frozenset({"customer_amount", "provider_amount", "platform_amount", "inviter_amount"})
    return ChainEventSignal(
        kind=event_kind,
        identity=identity,
        chain_booking_id=chain_booking_id,
        cancellation=CancellationFields(
            **_fields(payload, ("cancelled_by", "reason", *sorted(amounts)), amounts)
        ),
    )
