"""The signature nonces the escrow has used since the restored checkpoint, read from the chain.

The contract refuses an authorization whose nonce it has seen; Postgres hands nonces out from a
sequence, and a restore puts that sequence back. The workflows' histories tell the nonces they
signed, but a workflow already gone from Temporal cannot: the payment or cancellation it made
still carries its authorization in the transaction's call data, so the chain tells the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chain.artifacts import load_artifact
from chain.client import ChainClient
from chain.events import BookingCancelled, BookingCreatedAndPaid, DecodedEvent
from chain.hexutil import to_bytes
from db.models import ChainCursor

# The largest nonce the BIGINT sequence can hand out: a nonce above it was never one of ours
# (an authorization signed elsewhere with the signer key, e.g. with a random 256-bit nonce),
# so it cannot collide with what the sequence gives out, and cannot be a floor for it.
SEQUENCE_MAX = 2**63 - 1


@cache
def _authorized_calls() -> dict[bytes, tuple[str, ...]]:
    """Escrow functions taking a signed authorization (a struct ending in ``nonce``) first."""
    calls: dict[bytes, tuple[str, ...]] = {}
    for entry in load_artifact("BookingEscrow").abi:
        inputs = entry.get("inputs") or []
        if entry.get("type") != "function" or not inputs or inputs[0]["type"] != "tuple":
            continue
        if inputs[0]["components"][-1]["name"] == "nonce":
            selector = function_abi_to_4byte_selector(entry)  # type: ignore[arg-type]
            calls[selector] = tuple(get_abi_input_types(entry))  # type: ignore[arg-type]
    return calls


def could_be_ours(nonce: int) -> bool:
    """Whether the signature nonce sequence could have handed ``nonce`` out."""
    return 0 < nonce <= SEQUENCE_MAX


def nonce_of(call_data: bytes) -> int | None:
    """The authorization nonce a transaction's call data carries, None for any other call."""
    types = _authorized_calls().get(call_data[:4])
    if types is None:
        return None
    authorization: Any = abi_decode(types, call_data[4:])[0]
    return int(authorization[-1])


async def restored_checkpoint(
    sessions: async_sessionmaker[AsyncSession], chain_id: int, escrow: str
) -> int | None:
    """The listener's checkpoint as the backup had it: nothing signed after it was lost."""
    async with sessions() as session:
        return await session.scalar(
            select(ChainCursor.last_block_number).where(
                ChainCursor.chain_id == chain_id, ChainCursor.contract_address == escrow
            )
        )


async def used_nonces(chain: ChainClient, events: Iterable[DecodedEvent], after: int) -> set[int]:
    """Nonces the sequence could have handed out, of the payments and cancellations in blocks
    above ``after``."""
    found: set[int] = set()
    hashes = {
        e.identity.tx_hash
        for e in events
        if isinstance(e, BookingCreatedAndPaid | BookingCancelled)
        and e.position.block_number > after
    }
    for tx_hash in sorted(hashes):
        tx = await chain.get_transaction(tx_hash)
        nonce = None if tx is None else nonce_of(to_bytes(tx.get("input") or "0x"))
        if nonce is not None and could_be_ours(nonce):
            found.add(nonce)
    return found
