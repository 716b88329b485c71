"""Task queue, timeouts, retry policies, history bounds and error type names, in one place."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

TASK_QUEUE = "bookings"
BOOKING_WORKFLOW_NAME = "booking"
ORPHAN_WORKFLOW_NAME = "orphan-payment"


def booking_workflow_id(booking_id: str) -> str:
    """Workflow id of one booking: ``booking-{uuid}``."""
    return f"booking-{booking_id}"


def orphan_workflow_id(chain_booking_id: str) -> str:
    """Deterministic id so the listener can start the same orphan refund twice safely."""
    return f"orphan-{chain_booking_id.lower()}"


# --- activity names (the fakes in tests register the same names) ---
RECORD_BOOKING = "record_booking"
APPLY_TRANSITION = "apply_transition"
RECORD_ORPHAN = "record_orphan"
SIGN_PAYMENT_AUTHORIZATION = "sign_payment_authorization"
SIGN_CANCELLATION_AUTHORIZATION = "sign_cancellation_authorization"
OBSERVE_BOOKING = "observe_booking"
SEND_COMPLETE_SERVICE = "send_complete_service"
SEND_EMERGENCY_CANCEL = "send_emergency_cancel"
RELAY_PAYMENT = "relay_payment"

# --- non-retryable error types (ApplicationError.type) ---
# Raised by activities when retrying cannot help: the input is wrong or the chain refuses.
INVALID_ACTIVITY_INPUT = "InvalidActivityInput"
BOOKING_CONFLICT = "BookingConflict"
CHAIN_REJECTED = "ChainRejected"
SIGNER_UNAVAILABLE = "SignerUnavailable"
NON_RETRYABLE_ERROR_TYPES = (
    INVALID_ACTIVITY_INPUT,
    BOOKING_CONFLICT,
    CHAIN_REJECTED,
    SIGNER_UNAVAILABLE,
)

# A relayed payment refused before anything is sent (workflows.errors.RelayRefused): final.
RELAY_REFUSED = "RelayRefused"

# --- timeouts ---
DB_ACTIVITY_TIMEOUT = timedelta(seconds=15)
SIGN_ACTIVITY_TIMEOUT = timedelta(seconds=10)
OBSERVE_ACTIVITY_TIMEOUT = timedelta(seconds=20)
# Sending waits for the transaction to be mined; the sender is idempotent, so a retry after
# a timeout finds the transaction it already sent instead of sending another.
SEND_ACTIVITY_TIMEOUT = timedelta(minutes=2)
SEND_HEARTBEAT_TIMEOUT = timedelta(seconds=30)
# Reconciliation scans a page of bookings (or the running workflows) per activity.
SCAN_TIMEOUT = timedelta(minutes=10)
SCAN_HEARTBEAT = timedelta(seconds=60)
# Retention deletes in batches and heartbeats between them; a large backlog may take a while.
RETENTION_ACTIVITY_TIMEOUT = timedelta(minutes=30)
RETENTION_HEARTBEAT_TIMEOUT = timedelta(minutes=2)

# --- retry policies ---
# Postgres and signing: retry forever with backoff (an outage must not lose a transition).
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    non_retryable_error_types=list(NON_RETRYABLE_ERROR_TYPES),
)
SIGN_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=5,
    non_retryable_error_types=list(NON_RETRYABLE_ERROR_TYPES),
)
# A poll is one of many; failing fast keeps the monitoring window moving.
OBSERVE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=3,
    non_retryable_error_types=list(NON_RETRYABLE_ERROR_TYPES),
)
SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=10,
    non_retryable_error_types=list(NON_RETRYABLE_ERROR_TYPES),
)
# The customer waits on the answer: a few tries (each finds the ledger's transaction first),
# then the API answers 503 and a repeated request resumes the same transaction.
RELAY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=4,
    non_retryable_error_types=[*NON_RETRYABLE_ERROR_TYPES, RELAY_REFUSED],
)
# A reconcile or retention run is one of a schedule's: a few attempts, then the next run.
SCAN_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=5,
)
RETENTION_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5), backoff_coefficient=2.0, maximum_attempts=5
)

# --- history bounds (see workflows/booking.py for the worst-case arithmetic) ---
# Budgets are per party (customer, provider), so no party can spend another's; operator
# updates (emergency_cancel, redrive, resync) are never refused by a budget.
MAX_ACCEPTED_UPDATES = 40  # per party: updates that changed something
MAX_REPEATED_UPDATES = 100  # per party: repeats that changed nothing still cost history
MAX_PAYMENT_AUTHORIZATIONS = 8
MAX_CANCELLATION_AUTHORIZATIONS = 4  # per requesting role
MAX_REPORTED_TRANSACTIONS = 8  # per party
MAX_AUTO_COMPLETE_ATTEMPTS = 3
MAX_REJECTED_EVENTS_RECORDED = 20
# The chain judges times by block.timestamp, which lags wall time: act this long after a time
# the contract checks (completeService refused until releaseTime; an authorization usable
# until its expiry).
BLOCK_TIME_MARGIN = timedelta(seconds=15)
# An authorization handed out with less life left than this is replaced, not reused.
MIN_REUSABLE_AUTHORIZATION = timedelta(seconds=60)
# workflow.patched ids: behaviour added after histories were recorded (see the replay test).
# A settled booking stays open for the finality period and rolls back a reorged settlement.
PATCH_SETTLEMENT_FINALITY = "settlement-finality"
# Booking and transition writes run as local activities (same worker, no task round trip).
PATCH_LOCAL_DB_WRITES = "local-db-writes"
# A reported transaction never changes the status; an unpaid booking with a live payment
# authorization is cancelled when the authorization expires.
PATCH_TRUST_BOUNDARY = "trust-boundary"
# Signing and chain reads (observe) run as local activities too (six history events fewer
# each), and a booking records this one marker instead of one per patch before it: each
# marker costs two events, itself and the TemporalChangeVersion upsert (booking/versions.py).
PATCH_COMPACT_HISTORY = "compact-history"
# An unpaid cancellation looks at the chain once more even when the payment authorization
# expired by our clock: the chain's clock may lag (timers.chain_passed).
PATCH_CHAIN_CLOCK = "chain-clock"
# An unpaid cancellation reads the chain before it closes: a payment confirmed there (the
# workflow behind after a lost workflow task, a push still on its way) is applied first and the
# request judged as a paid cancellation; a payment mined and not yet confirmed, or a read that
# failed, defers the cancellation to the deadline's own check.
PATCH_UNPAID_CANCEL_READS_CHAIN = "unpaid-cancel-reads-chain"
IMPLIED_BY_COMPACT_HISTORY = frozenset(
    {PATCH_SETTLEMENT_FINALITY, PATCH_LOCAL_DB_WRITES, PATCH_TRUST_BOUNDARY}
)
