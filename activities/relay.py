"""``RelayActivities``: send a customer's one-signature payment from the operator key (issue #19).

Crash safety. The transaction is sent through the operator's ``TransactionSender`` with one
ledger intent per (escrow, booking): recorded in Postgres before any broadcast, so an activity
retried after a worker died (on this replica or another) finds it, re-broadcasts the same signed
bytes and waits for them, and never signs a second payment. Were a second one ever sent, the
chain would refuse it: the booking id moves None -> Paid once, the authorization's nonce and
the customer's ERC-3009 nonce are single-use.

Nothing is sent, and no gas spent, unless every check passes first: relaying is on and the
operator holds its floor of ETH, the customer holds the amount in USDC, the transfer signature
is the customer's, ``eth_call`` of the exact transaction succeeds and its gas is under the cap.
Each refusal is a ``RelayRefused`` with a code the API answers with.
"""

from __future__ import annotations

import uuid

import structlog
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.heartbeat import heartbeating
from bookme.relay_settings import RelaySettings
from chain.basis_points import bps_of
from chain.client import ChainClient
from chain.eip712 import Eip712Domain, TypedDataError
from chain.errors import FeeCapExceeded
from chain.escrow import EscrowReader
from chain.ledger import SentTransaction
from chain.models import TransactionReceipt
from chain.sender import TransactionSender
from chain.transfer_auth import (
    read_token_domain,
    relayed_payment_tx,
    simulate_relayed_payment,
    transfer_authorization,
)
from db.relay_models import RelayedPayment
from workflows import constants as c
from workflows.errors import ActivityRejected, RelayRefused
from workflows.relay_terms import booking_authorization, transfer_terms
from workflows.types.relay import RelayTxRequest, RelayTxResult

log = structlog.get_logger(__name__)


def relay_intent(escrow: str, chain_booking_id: str) -> str:
    """The ledger intent of a booking's relayed payment: one live transaction per booking."""
    return f"relay_payment:{escrow.lower()}:{chain_booking_id.lower()}"


class RelayMetrics:
    """What relaying costs the platform, per relayed payment (exported by the worker)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.relayed = Counter(
            "bookme_relayed_payments",
            "Bookings paid with the customer's transfer signature, the operator paying gas",
            registry=registry,
        )
        self.gas_used = Counter(
            "bookme_relay_gas_used", "Gas used by relayed payments", registry=registry
        )
        self.gas_cost = Counter(
            "bookme_relay_gas_cost_wei",
            "Wei the operator paid for relayed payments' gas",
            registry=registry,
        )
        self.refused = Counter(
            "bookme_relay_refusals",
            "Relayed payments refused before sending, by code",
            ["code"],
            registry=registry,
        )


class RelayActivities:
    """The ``relay_payment`` activity over the operator's sender, the chain and Postgres."""

    def __init__(
        self,
        *,
        client: ChainClient,
        escrow: EscrowReader,
        sender: TransactionSender | None,
        sessions: async_sessionmaker[AsyncSession],
        settings: RelaySettings,
        metrics: RelayMetrics,
    ) -> None:
        self._client = client
        self._escrow = escrow
        self._sender = sender
        self._sessions = sessions
        self._settings = settings
        self._metrics = metrics
        self._token: Eip712Domain | None = None

    @activity.defn(name=c.RELAY_PAYMENT)
    async def relay_payment(self, request: RelayTxRequest) -> RelayTxResult:
        """Send the booking's relayed payment once (or resume it) and wait until it is mined."""
        sender = self._sender
        if sender is None:
            raise RelayRefused("no operator key configured: relaying is off", "relay_unavailable")
        intent = relay_intent(self._escrow.address, request.authorization.chain_booking_id)
        sent = await sender.recorded(intent)
        if sent is not None:
            # Recorded before a crash or by another replica: that one, never a second.
            sent = await sender.resume(sent)
        else:
            try:
                sent = await self._send(sender, request, intent)
            except RelayRefused as refused:
                self._metrics.refused.labels(refused.code).inc()
                log.info("relay_refused", booking_id=request.booking_id, code=refused.code)
                raise
        receipt = await heartbeating(sender.wait(sent, confirmations=0))
        if not receipt.succeeded:
            raise ActivityRejected(
                f"the relayed payment reverted in {receipt.tx_hash}", error_type=c.CHAIN_REJECTED
            )
        return await self._record(request, sender.address, receipt)

    async def _send(
        self, sender: TransactionSender, request: RelayTxRequest, intent: str
    ) -> SentTransaction:
        auth = request.authorization
        off = self._settings.relay_off_reason(await self._client.get_balance(sender.address))
        if off is not None:
            raise RelayRefused(off, "relay_unavailable")
        held = await self._escrow.usdc_balance_of(auth.customer)
        if held < auth.amount:
            raise RelayRefused(
                f"the customer's wallet holds {held} USDC base units; the booking needs "
                f"{auth.amount}",
                "insufficient_usdc",
            )
        try:
            transfer = transfer_terms(
                auth, valid_after=request.valid_after, valid_before=request.valid_before
            )
            parts = transfer_authorization(await self._token_domain(), transfer, request.signature)
        except TypedDataError as exc:  # a signature not the customer's, or a window none could be
            raise RelayRefused(str(exc), "invalid_transfer_signature") from None
        tx = relayed_payment_tx(
            self._escrow.address,
            booking_authorization(auth),
            auth.signature,
            parts,
            relayer=sender.address,
        )
        simulation = await simulate_relayed_payment(self._client, tx)
        if not simulation.ok or simulation.gas is None:
            raise RelayRefused(
                f"the payment would fail on chain: {simulation.reason}", "relay_simulation_failed"
            )
        gas = simulation.gas + bps_of(simulation.gas, sender.config.gas_headroom_bps)
        if gas > self._settings.relay_max_gas:
            raise RelayRefused(
                f"the payment needs {gas} gas, above the relayer's cap", "relay_gas_cap"
            )
        try:
            return await sender.send(to=tx["to"], data=tx["data"], gas=gas, intent=intent)
        except FeeCapExceeded as exc:
            raise RelayRefused(str(exc), "relay_unavailable") from None

    async def _token_domain(self) -> Eip712Domain:
        if self._token is None:
            self._token = await read_token_domain(self._client, await self._escrow.usdc_address())
        return self._token

    async def _record(
        self, request: RelayTxRequest, relayer: str, receipt: TransactionReceipt
    ) -> RelayTxResult:
        """The relay's cost, kept with its booking; counted once however often it is retried."""
        cost = receipt.gas_used * receipt.effective_gas_price
        async with self._sessions.begin() as session:
            inserted = await session.scalar(
                pg_insert(RelayedPayment)
                .values(
                    booking_id=uuid.UUID(request.booking_id),
                    chain_id=request.authorization.chain_id,
                    tx_hash=receipt.tx_hash,
                    relayer=relayer,
                    gas_used=receipt.gas_used,
                    effective_gas_price_wei=receipt.effective_gas_price,
                    gas_cost_wei=cost,
                    block_number=receipt.block_number,
                )
                .on_conflict_do_nothing()
                .returning(RelayedPayment.booking_id)
            )
        if inserted is not None:
            self._metrics.relayed.inc()
            self._metrics.gas_used.inc(receipt.gas_used)
            self._metrics.gas_cost.inc(cost)
        log.info(
            "payment_relayed",
            booking_id=request.booking_id,
            tx_hash=receipt.tx_hash,
            gas_used=receipt.gas_used,
            gas_cost_wei=cost,
        )
        return RelayTxResult(tx_hash=receipt.tx_hash, gas_used=receipt.gas_used, gas_cost_wei=cost)
