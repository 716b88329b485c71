"""Chain-side activities for API tests (no chain here: the test drives chain events through
the listener's signals); Postgres and signing use the real ``activities`` classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_account import Account
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities import BookingStore, Signer
from chain.eip712 import Eip712Domain
from workflows import constants as c
from workflows.types import (
    ChainObservation,
    ObserveRequest,
    OnChainStatus,
    OperatorTxRequest,
    OperatorTxResult,
    TxStatus,
)

# anvil's published account #1 key: a test signer only.
SIGNER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
SIGNER_ADDRESS = Account.from_key(SIGNER_KEY).address
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CHAIN_ID = 31337


class FakeChain:
    """observe_booking sees nothing yet; operator sends return made-up transaction hashes."""

    def __init__(self) -> None:
        self.sent = 0

    @activity.defn(name=c.OBSERVE_BOOKING)
    async def observe_booking(self, req: ObserveRequest) -> ChainObservation:
        return ChainObservation(
            events=[], tx_status=TxStatus.UNKNOWN, onchain_status=OnChainStatus.NONE
        )

    @activity.defn(name=c.SEND_EMERGENCY_CANCEL)
    async def send_emergency_cancel(self, req: OperatorTxRequest) -> OperatorTxResult:
        self.sent += 1
        return OperatorTxResult(tx_hash="0x" + f"{self.sent:064x}")

    @activity.defn(name=c.SEND_COMPLETE_SERVICE)
    async def send_complete_service(self, req: OperatorTxRequest) -> OperatorTxResult:
        self.sent += 1
        return OperatorTxResult(tx_hash="0x" + f"{self.sent:064x}")


def worker_activities(
    sessions: async_sessionmaker[AsyncSession], chain: FakeChain
) -> list[Callable[..., Any]]:
    """The real store and signer (real Postgres, real signatures) plus the fake chain side."""
    store = BookingStore(sessions, CONTRACT)
    signer = Signer(
        sessions,
        signer_key=SecretStr(SIGNER_KEY),
        domain=Eip712Domain(chain_id=CHAIN_ID, verifying_contract=CONTRACT),
    )
    return [
        store.record_booking,
        store.apply_transition,
        signer.sign_payment_authorization,
        signer.sign_cancellation_authorization,
        chain.observe_booking,
        chain.send_emergency_cancel,
        chain.send_complete_service,
    ]
