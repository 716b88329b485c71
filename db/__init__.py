"""SQLAlchemy models, engine/session factory and Alembic migrations (see db.migrate)."""

from db.engine import make_engine, make_session_factory
from db.identity_models import ApiKey, SiweNonce, WalletLink
from db.models import (
    BlockchainEvent,
    Booking,
    BookingEvent,
    ChainCursor,
    PlatformFee,
    ProviderEarning,
    RateLimitCounter,
    RecentBlock,
    Refund,
    SignatureNonce,
)
from db.statuses import BlockchainEventStatus, BookingStatus, NonceKind

__all__ = [
    "ApiKey",
    "BlockchainEvent",
    "BlockchainEventStatus",
    "Booking",
    "BookingEvent",
    "BookingStatus",
    "ChainCursor",
    "NonceKind",
    "PlatformFee",
    "ProviderEarning",
    "RateLimitCounter",
    "RecentBlock",
    "Refund",
    "SignatureNonce",
    "SiweNonce",
    "WalletLink",
    "make_engine",
    "make_session_factory",
]
