"""Inputs, outputs and signal payloads shared by the API, the listener, the worker and the workflows.

Import from here (``from workflows.types import BookingInput``); the submodules only group them:

- ``enums``: statuses and kinds (``BookingStatus`` with its status sets, event and tx kinds)
- ``policy``: ``BookingPolicy`` and the booking workflow's start input ``BookingInput``
- ``events``: ``EventIdentity``, the ``*Fields`` of each escrow event, ``ChainEventSignal``
- ``updates``: requests and results of the booking workflow's updates (resync/redrive included)
- ``view``: ``BookingView``, the ``status`` query, and ``RecordedBooking`` (creation's update)
- ``activity_io``: activity inputs and outputs (transition records, signing, chain polling)
- ``orphan``: the orphan-payment workflow's input, records and result
- ``sightings``: ``PaymentSighting`` (the ``payment_seen`` signal) and ``PaymentSeen`` (its view)

Serialization: Temporal's default JSON converter is enough for everything here. It writes
``datetime`` as ISO 8601 with its offset and reads it back from the type hint, and handles
nested frozen dataclasses, ``X | None`` and ``StrEnum``. Every ``datetime`` in these types is
timezone-aware UTC; there are no bare ``date``/``time`` fields (the only ones that would need
``temporalio.contrib.pydantic``). Clients and workers use ``workflows.DATA_CONVERTER``
(the default converter, named so a later switch happens in one place). The converter writes no
module paths, so moving a type between these submodules leaves recorded histories replayable.

Money is always integer USDC base units (6 decimals). Wallets are 0x-hex strings and compared
case-insensitively; on-chain times (``release_time``, ``expiry``) are uint256 epoch seconds.
"""

from workflows.types.activity_io import (
    BookingResync,
    ChainObservation,
    ObserveRequest,
    OperatorTxRequest,
    OperatorTxResult,
    RowTransaction,
    Settlement,
    SignCancellationRequest,
    SignPaymentRequest,
    StoredBooking,
    TransitionRecord,
)
from workflows.types.enums import (
    MONEY_HELD_STATUSES,
    TERMINAL_STATUSES,
    BookingStatus,
    ChainEventKind,
    EventOutcome,
    OnChainStatus,
    PartyRole,
    TransactionKind,
    TxColumn,
    TxStatus,
)
from workflows.types.events import (
    CancellationFields,
    ChainEventSignal,
    CompletionFields,
    EventIdentity,
    PaymentFields,
)
from workflows.types.orphan import OrphanPaymentInput, OrphanRecord, OrphanResult
from workflows.types.policy import ZERO_ADDRESS, BookingInput, BookingPolicy
from workflows.types.sightings import PaymentSeen, PaymentSighting, seen_summary
from workflows.types.updates import (
    AuthorizePaymentRequest,
    CancellationAuthorization,
    CancellationRequest,
    CancellationResult,
    CancellationSplit,
    EmergencyCancelRequest,
    EmergencyCancelResult,
    PaymentAuthorization,
    RedriveRequest,
    RedriveResult,
    ReportTransactionRequest,
    ResyncRequest,
    ResyncResult,
    TransactionReport,
)
from workflows.types.view import BookingView, RecordedBooking

__all__ = [
    "MONEY_HELD_STATUSES",
    "TERMINAL_STATUSES",
    "ZERO_ADDRESS",
    "AuthorizePaymentRequest",
    "BookingInput",
    "BookingPolicy",
    "BookingResync",
    "BookingStatus",
    "BookingView",
    "CancellationAuthorization",
    "CancellationFields",
    "CancellationRequest",
    "CancellationResult",
    "CancellationSplit",
    "ChainEventKind",
    "ChainEventSignal",
    "ChainObservation",
    "CompletionFields",
    "EmergencyCancelRequest",
    "EmergencyCancelResult",
    "EventIdentity",
    "EventOutcome",
    "ObserveRequest",
    "OnChainStatus",
    "OperatorTxRequest",
    "OperatorTxResult",
    "OrphanPaymentInput",
    "OrphanRecord",
    "OrphanResult",
    "PartyRole",
    "PaymentAuthorization",
    "PaymentFields",
    "PaymentSeen",
    "PaymentSighting",
    "RecordedBooking",
    "RedriveRequest",
    "RedriveResult",
    "ReportTransactionRequest",
    "ResyncRequest",
    "ResyncResult",
    "RowTransaction",
    "Settlement",
    "SignCancellationRequest",
    "SignPaymentRequest",
    "StoredBooking",
    "TransactionKind",
    "TransactionReport",
    "TransitionRecord",
    "TxColumn",
    "TxStatus",
    "seen_summary",
]
