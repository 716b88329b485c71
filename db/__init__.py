"""SQLAlchemy models, engine/session factory and Alembic migrations (see db.migrate)."""

from db.engine import make_engine, make_session_factory
from db.identity_models import ApiKey, SiweNonce, WalletLink
from db.models import (
    BlockchainEvent,
    Booking,
    BookingEvent,
    ChainCursor,
    RateLimitCounter,
    RecentBlock,
    SignatureNonce,
)

# Registers relayed payments (migration 0008) on Base.metadata.
from db.relay_models import RelayedPayment
from db.settlement_models import PlatformFee, ProviderEarning, Refund
from db.statuses import BlockchainEventStatus, BookingStatus, NonceKind

# Registers the transaction ledger's tables (migration 0006) on Base.metadata.
from db.tx_ledger_models import LedgerTransaction, TxNonce

# Registers the webhook tables on Base.metadata (migrations and models compared as one schema).
from db.webhook_models import WebhookDelivery, WebhookEndpoint, WebhookOutbox

__all__ = [
    "ApiKey",
    "BlockchainEvent",
    "BlockchainEventStatus",
    "Booking",
    "BookingEvent",
    "BookingStatus",
    "ChainCursor",
    "LedgerTransaction",
    "NonceKind",
    "PlatformFee",
    "ProviderEarning",
    "RateLimitCounter",
    "RecentBlock",
    "Refund",
    "RelayedPayment",
    "SignatureNonce",
    "SiweNonce",
    "TxNonce",
    "WalletLink",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookOutbox",
    "make_engine",
    "make_session_factory",
]
