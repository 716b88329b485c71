"""A key's transaction ledger: where its nonces come from, and every signed version written
down before it is broadcast.

Why a ledger in Postgres and not a single sender lane. Every worker replica holds the operator
key; two replicas must never sign two transactions at one nonce. A lane (one task queue served
with one concurrent activity) does not give that by itself: each replica polling the lane
brings its own slot, so two replicas are two concurrent senders unless a lease is added, and a
lease is a lock in Postgres anyway. A lane also carries one transaction at a time (its one
activity sends and waits), which cannot carry a thousand auto-completions a minute or the
relayed customer payments to come.

So the nonce is allocated in Postgres: one row per (chain id, sender address) is locked
``FOR UPDATE`` while the next nonce is taken, the transaction signed and recorded, all in one
database transaction; the broadcast comes after the commit, outside the lock, so many
transactions of one key are in flight at once with consecutive nonces. Because the record is
durable before any node has seen the transaction:

- a replica killed after the commit (before, during or after the broadcast) leaves a record;
  the retried activity, on any replica, finds it by its intent (``complete_service`` of one
  booking on one escrow), re-broadcasts the same signed bytes and waits for them: it never
  signs a second transaction at a new nonce;
- a replica killed before the commit leaves nothing: no nonce was taken;
- a recorded nonce is always used, by its own transaction or a fee-bumped replacement (also
  recorded before broadcast). A later transaction stuck behind an unbroadcast one
  re-broadcasts it (`TransactionSender` heals the gap), so nonces stay gap-free even when
  nobody retries the intent that took the nonce;
- a chain that lost settled transactions (a dev chain restarted from an older state) counts
  fewer than the ledger gave out; with nothing in flight above its count, those nonces are
  given out again (their rows marked dropped) rather than left as a gap nothing fills.

An intent has at most one live (unsettled) or succeeded transaction: a second caller gets the
recorded one back. A reverted or dropped transaction frees its intent for a new attempt.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from chain.fees import FeeQuote
from chain.models import TransactionReceipt


@dataclass(kw_only=True)
class SentTransaction:
    """A broadcast transaction and its same-nonce replacements (newest last)."""

    nonce: int
    to: str | None
    data: bytes
    value: int
    gas: int
    fees: FeeQuote
    hashes: list[str] = field(default_factory=list)
    broadcast_at: float = 0.0
    nonce_used_elsewhere: int = 0
    checked_at_head: int = -1
    # What the transaction is for, unique among a ledger's live ones (None: no dedupe).
    intent: str | None = None
    # The newest version's signed bytes, kept by a ledger so any replica can re-broadcast them.
    raw: bytes = b""
    healed_at: float = 0.0
    # As the ledger last knew it; None while in flight.
    outcome: TxOutcome | None = None

    @property
    def tx_hash(self) -> str:
        """Hash of the newest broadcast version."""
        return self.hashes[-1]

    @property
    def replacements(self) -> int:
        return len(self.hashes) - 1


@dataclass(frozen=True, kw_only=True, slots=True)
class TxDraft:
    """A transaction estimated and priced, waiting for its nonce."""

    to: str | None
    data: bytes
    value: int
    gas: int
    fees: FeeQuote
    intent: str | None = None


class TxOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    REVERTED = "reverted"
    DROPPED = "dropped"  # its nonce was used by a transaction the ledger does not know


Signer = Callable[[SentTransaction], tuple[bytes, str]]
ChainCount = Callable[[], Awaitable[int]]


class TxLedger(Protocol):
    """The durable record of one key's transactions on one chain."""

    async def find(self, intent: str) -> SentTransaction | None:
        """The live or succeeded transaction recorded for ``intent``, if any."""
        ...

    async def issue(
        self, draft: TxDraft, *, chain_count: ChainCount, sign: Signer
    ) -> SentTransaction:
        """Take the next nonce (never below ``chain_count()``, the chain's pending count), sign
        and record.

        Returns the recorded transaction, not yet broadcast; when the draft's intent already has
        a live or succeeded transaction, returns that one instead and takes no nonce.
        """
        ...

    async def record_version(self, sent: SentTransaction, *, raw: bytes, tx_hash: str) -> None:
        """Add a version of ``sent`` (its hash, signed bytes, ``sent.fees``) before it is broadcast."""
        ...

    async def settle(
        self, sent: SentTransaction, outcome: TxOutcome, receipt: TransactionReceipt | None
    ) -> None:
        """Record how the transaction ended (idempotent)."""
        ...

    async def at_nonce(self, nonce: int) -> SentTransaction | None:
        """The transaction recorded at ``nonce``, settled or not (see its ``outcome``)."""
        ...
