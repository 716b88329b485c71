"""Chain events as the workflows hear them: signals from the listener and results of polling."""

from dataclasses import dataclass

from chain.event_key import event_key
from workflows.types.enums import ChainEventKind


@dataclass(frozen=True, kw_only=True)
class EventIdentity:
    """Where an event sits on chain; ``(chain_id, tx_hash, log_index)`` is the dedupe key."""

    chain_id: int
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str

    @property
    def key(self) -> str:
        return event_key(self.chain_id, self.tx_hash, self.log_index)


@dataclass(frozen=True, kw_only=True)
class PaymentFields:
    """``BookingCreatedAndPaid`` fields."""

    customer: str
    provider: str
    inviter: str
    amount: int
    platform_fee_rate: int
    inviter_fee_rate: int


@dataclass(frozen=True, kw_only=True)
class CompletionFields:
    """``ServiceCompleted`` fields."""

    provider: str
    provider_amount: int
    platform_fee: int
    inviter_fee: int


@dataclass(frozen=True, kw_only=True)
class CancellationFields:
    """``BookingCancelled`` fields."""

    cancelled_by: str
    customer_amount: int
    provider_amount: int
    platform_amount: int
    inviter_amount: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class ChainEventSignal:
    """One decoded escrow event plus its identity: the payload of every chain signal.

    Exactly the field group matching ``kind`` is set. ``chain_event_reverted`` carries the
    same payload as the signal it revokes.
    """

    kind: ChainEventKind
    identity: EventIdentity
    chain_booking_id: str
    payment: PaymentFields | None = None
    completion: CompletionFields | None = None
    cancellation: CancellationFields | None = None

    def __post_init__(self) -> None:
        present = {
            ChainEventKind.PAYMENT: self.payment is not None,
            ChainEventKind.COMPLETION: self.completion is not None,
            ChainEventKind.CANCELLATION: self.cancellation is not None,
        }
        if not present[self.kind] or sum(present.values()) != 1:
            raise ValueError(f"a {self.kind} event must carry exactly its own fields")

    @property
    def key(self) -> str:
        return self.identity.key
