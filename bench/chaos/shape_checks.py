"""The checks production shape adds to bench/chaos/checks.py.

- operator transactions: the operator key's nonces on chain against the ledger table
  (``tx_ledger``, chain/ledger.py): every nonce the ledger gave out is mined, none twice, no gap
  below the chain's count, no intent (one booking's completion, one refund) sent twice, and none
  reverted: the contract refuses a completion before its release time, so a revert is a
  transaction fired early (the clock fault) or twice (a killed replica's retry);
- 503s carry a retry hint (``Retry-After``);
- what each fault found wrong while it lasted (the Temporal outage's checkpoint).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.chaos.faults import FaultWindow
from bench.chaos.workload import ApiCall
from chain.client import ChainClient

OPERATOR_LEDGER = "operator nonces: ledger = chain, none twice or early"
RETRY_HINT = "503s carry Retry-After"
FAULT_EXPECTATIONS = "each fault's own expectations"


async def operator_ledger(
    engine: AsyncEngine,
    chain: ChainClient,
    operator: str,
    forgotten: tuple[range, ...] = (),
) -> list[str]:
    """What is wrong between the operator's ledger rows and its nonces on chain.

    ``forgotten``: nonces a Postgres restore took out of the ledger (sent after the backup,
    before the restore); only their absence is forgiven, not a reuse or a revert."""
    async with engine.connect() as conn:
        rows: list[Any] = list(
            (
                await conn.execute(
                    text(
                        "SELECT nonce, intent, outcome FROM tx_ledger"
                        " WHERE lower(sender) = lower(:sender)"
                        " AND outcome IS DISTINCT FROM 'dropped' ORDER BY nonce"
                    ),
                    {"sender": operator},
                )
            ).all()
        )
    mined = await chain.get_transaction_count(operator, "latest")
    problems: list[str] = []
    nonces = Counter(int(r.nonce) for r in rows)
    problems += [f"nonce {n} recorded {c} times" for n, c in nonces.items() if c > 1]
    if nonces:
        lost = {n for window in forgotten for n in window}
        gaps = sorted(set(range(min(nonces), mined)) - set(nonces) - lost)
        problems += [f"nonce {n} mined but not in the ledger (a gap)" for n in gaps[:20]]
    problems += [
        f"nonce {r.nonce} ({r.intent}) recorded but not mined (chain count {mined})"
        for r in rows
        if int(r.nonce) >= mined
    ]
    succeeded = Counter(r.intent for r in rows if r.intent and r.outcome == "succeeded")
    problems += [f"{intent} succeeded {c} times" for intent, c in succeeded.items() if c > 1]
    problems += [f"nonce {r.nonce} ({r.intent}) reverted" for r in rows if r.outcome == "reverted"]
    problems += [f"nonce {r.nonce} ({r.intent}) never settled" for r in rows if r.outcome is None]
    return problems


def retry_hints(calls: list[ApiCall], origin: float) -> list[str]:
    return [
        f"{c.method} {c.route}: 503 {c.code} without Retry-After at +{c.at - origin:.1f}s"
        for c in calls
        if c.status == 503 and not c.retry_after
    ]


def fault_expectations(windows: list[FaultWindow], origin: float) -> list[str]:
    return [
        f"{w.kind.value} at +{w.start - origin:.0f}s: {problem}"
        for w in windows
        for problem in w.problems
    ]
