"""After quiescence: every check of issue #9, each returning violations (empty = holds).

- final state: each booking row against the contract's ``getBooking``; orphans refunded;
- exactly once: every escrow log on the canonical chain (re-read with eth_getLogs) has one
  ``blockchain_events`` row at its current block, settled, and its booking applied it once
  net of reorg reverts in ``booking_events``; every other row is REORGED;
- money: the escrow's USDC equals money held + owed; per booking, what Postgres recorded as
  released equals what the logs released (and `activities.invariants.check_invariants` when
  it is implemented);
- stuck: no booking left in a non-terminal state (every timer of the run is short);
- API: no 5xx except a 503 while a dependency of the API was down;
- attacks (bench/chaos/adversary.py): every request an attacker sent that the API must refuse
  got a 4xx, every transaction it sent reverted and moved no money, every action the policy
  allows its victims (and the operator) worked, and each victim's booking ended in the state
  and with the money its honest flow called for (no operator refund after cancel-then-pay);
- figures: latency of the honest requests (p50/p99, and p99 outside fault windows), to set
  beside a run without attacks.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowExecutionStatus

from activities.reconcile.orphan_flows import HeldTxs, OrphanFlows, orphan_flows
from bench.chaos.adversary_log import AdversaryLog, Expectation
from bench.chaos.due import cut_short, deadline, waiting
from bench.chaos.faults import OUTAGES, FaultKind, FaultWindow
from bench.chaos.shape_checks import (
    FAULT_EXPECTATIONS,
    OPERATOR_LEDGER,
    RETRY_HINT,
    fault_expectations,
    operator_ledger,
    retry_hints,
)
from bench.chaos.workload import ApiCall, BookingRecord, Kind
from chain.client import ChainClient
from chain.deploy import Deployment
from chain.escrow import EscrowReader, OnChainBookingStatus
from chain.events import (
    BookingCancelled,
    BookingCreatedAndPaid,
    ServiceCompleted,
    decode_escrow_logs,
)
from workflows import booking_workflow_id
from workflows.chain_agreement import settled_with_chain
from workflows.types import BookingStatus, OnChainStatus

# The API's clients reconnect after an outage; a 503 this long after it is still the outage's.
OUTAGE_GRACE_SECONDS = 20.0
# POST /bookings: "accepted but not recorded yet; retry with the same Idempotency-Key" - the
# worker (a dependency) is behind. Reported, not counted: a loaded 2-core machine does that.
WORKER_BEHIND = "booking_pending"
APPLIED = frozenset(
    {
        "payment_confirmed",
        "service_completed",
        "booking_cancelled",
        "contradiction",
        "completed_while_failed",
        "refund_recorded",
    }
)
RETRACTED = frozenset({"payment_reorged", "settlement_reorged", "event_reverted"})
# Audit rows that mean an operator refund was sent or is owed for the booking.
REFUND_AUDIT_SQL = (
    "SELECT booking_id::text AS b FROM booking_events WHERE kind IN"
    " ('emergency_cancel_sent', 'contradiction', 'refund_failed', 'refund_recorded')"
)
# A request this long after a fault window is "outside" it for the latency figures.
LATENCY_GRACE_SECONDS = 5.0
BAD_GATEWAY = "bad_gateway"
KILLED_API = frozenset({FaultKind.KILL_API})
ATTACKS_REFUSED = "attackers' requests refused (4xx)"
ATTACKS_REVERTED = "attackers' transactions reverted, no money moved"
VICTIMS_SERVED = "victims' allowed actions worked"
VICTIMS_SETTLED = "victims' bookings ended as their flow called for, money right"


@dataclass
class CheckResults:
    violations: dict[str, list[str]] = field(default_factory=dict)
    final_states: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    # Seconds (and counts) of the honest requests' answers; see `honest_latency`.
    latency: dict[str, float] = field(default_factory=dict)

    def add(self, check: str, problems: list[str]) -> None:
        self.violations.setdefault(check, []).extend(problems)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.violations.values())


def _released(event: ServiceCompleted | BookingCancelled) -> int:
    if isinstance(event, ServiceCompleted):
        return event.provider_amount + event.platform_fee + event.inviter_fee
    return (
        event.customer_amount + event.provider_amount + event.platform_amount + event.inviter_amount
    )


async def _rows(engine: AsyncEngine, sql: str) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql))).all())


async def run_checks(
    *,
    engine: AsyncEngine,
    chain: ChainClient,
    deployment: Deployment,
    records: list[BookingRecord],
    calls: list[ApiCall],
    windows: list[FaultWindow],
    origin: float,
    adversary: AdversaryLog | None = None,
    operator: str | None = None,
    forgotten_operator_nonces: tuple[range, ...] = (),
    temporal: Client | None = None,
) -> CheckResults:
    results = CheckResults()
    reader = EscrowReader(chain, deployment.escrow, usdc_address=deployment.usdc)
    head = await chain.block_number()
    raw_logs = await chain.get_logs(
        from_block=deployment.block_number, to_block=head, address=deployment.escrow
    )
    events = decode_escrow_logs(raw_logs, deployment.chain_id, deployment.escrow)
    bookings = await _rows(
        engine,
        "SELECT id::text, status, blockchain_booking_id, amount_units, blockchain_tx_hash,"
        " completion_tx_hash, cancellation_tx_hash, payment_deadline_at, release_at,"
        " now() AS now FROM bookings",
    )
    by_chain_id = {str(b.blockchain_booking_id).lower(): b for b in bookings}
    orphans = orphan_flows(events, {cbid: _held(b) for cbid, b in by_chain_id.items()})

    checks: list[tuple[str, Coroutine[Any, Any, None]]] = [
        (
            "final state matches the chain",
            _final_states(results, reader, bookings, records, temporal),
        ),
        (
            "each chain event applied exactly once",
            _exactly_once(results, engine, events, by_chain_id, orphans),
        ),
        ("money invariants", _money(results, engine, reader, events, by_chain_id, orphans)),
    ]
    if adversary is not None:
        checks.append(
            (
                VICTIMS_SETTLED,
                _victims_settled(results, engine, adversary.expectations, events, bookings),
            )
        )
    if operator is not None:
        checks.append(
            (
                OPERATOR_LEDGER,
                _ledger(results, engine, chain, operator, forgotten_operator_nonces),
            )
        )
    for name, check in checks:
        try:
            await check
        except Exception as exc:  # a crashed check is a failed one, and the others still run
            results.add(name, [f"the check crashed: {type(exc).__name__}: {exc}"])
    _api(results, calls, windows, origin)
    results.add(RETRY_HINT, retry_hints(calls, origin))
    results.add(FAULT_EXPECTATIONS, fault_expectations(windows, origin))
    if adversary is not None:
        _attacks(results, adversary, windows, origin)
    results.latency = honest_latency(calls, windows)
    return results


async def _ledger(
    results: CheckResults,
    engine: AsyncEngine,
    chain: ChainClient,
    operator: str,
    forgotten: tuple[range, ...],
) -> None:
    results.add(OPERATOR_LEDGER, await operator_ledger(engine, chain, operator, forgotten))


async def _final_states(
    results: CheckResults,
    reader: EscrowReader,
    bookings: list[Any],
    records: list[BookingRecord],
    temporal: Client | None,
) -> None:
    mismatch: list[str] = []
    stuck: list[str] = []
    idle: list[Any] = []
    stopped = cut_short(records)
    for row in bookings:
        on_chain = (await reader.get_booking(row.blockchain_booking_id)).status
        results.final_states[row.status] += 1
        status = BookingStatus(row.status)
        if not status.is_terminal and waiting(
            row.id in stopped, row.status, row.payment_deadline_at, row.release_at, row.now
        ):
            idle.append(row)
            continue
        if not status.is_terminal:
            stuck.append(f"booking {row.id} still {row.status} (chain {on_chain.name})")
            continue
        # Final and the money finished moving (FAILED with a refund still owed is not).
        if not settled_with_chain(status, OnChainStatus[on_chain.name]):
            mismatch.append(f"booking {row.id}: Postgres {row.status}, chain {on_chain.name}")
    known = {str(row.id) for row in bookings}
    for record in records:
        if record.kind is Kind.ORPHAN:
            if record.chain_booking_id is None or record.payment_tx is None:
                continue
            on_chain = (await reader.get_booking(record.chain_booking_id)).status
            results.final_states[f"orphan: chain {on_chain.name}"] += 1
            if on_chain is not OnChainBookingStatus.CANCELLED:
                mismatch.append(f"orphan {record.chain_booking_id} not refunded: {on_chain.name}")
        elif record.booking_id is not None and record.booking_id not in known:
            mismatch.append(f"booking {record.booking_id} was created but has no row")
    stuck.extend(await _not_running(temporal, idle))
    if idle:
        results.notes.append(
            f"{len(idle)} open booking(s) waiting for a deadline ahead, their flows cut short by"
            " a fault, each with its workflow running: "
            + ", ".join(
                f"{r.id} {r.status} until"
                f" {deadline(r.status, r.payment_deadline_at, r.release_at):%H:%M:%S}"
                for r in idle[:10]
            )
        )
    results.add("final state matches the chain", mismatch)
    results.add("no booking stuck past a deadline", stuck)


async def _not_running(temporal: Client | None, idle: list[Any]) -> list[str]:
    """A waiting booking is fine only if its workflow runs, holding the timer for its deadline."""
    if temporal is None:
        return [f"booking {r.id} still {r.status}: no Temporal client to check it" for r in idle]
    problems: list[str] = []
    for row in idle:
        described = await temporal.get_workflow_handle(booking_workflow_id(row.id)).describe()
        if described.status is not WorkflowExecutionStatus.RUNNING:
            problems.append(f"booking {row.id} still {row.status}, its workflow {described.status}")
    return problems


def _held(row: Any) -> HeldTxs:
    """What a bookings row (as read here) holds of the chain, for ``orphan_flows``."""
    return HeldTxs.of_row(
        row, booking_id=row.id, cancelled=row.status == BookingStatus.CANCELLED.value
    )


async def _exactly_once(
    results: CheckResults,
    engine: AsyncEngine,
    events: list[BookingCreatedAndPaid | ServiceCompleted | BookingCancelled],
    by_chain_id: dict[str, Any],
    orphans: OrphanFlows,
) -> None:
    problems: list[str] = []
    stored = {
        (r.tx_hash.lower(), r.log_index): r
        for r in await _rows(
            engine,
            "SELECT tx_hash, log_index, block_hash, status, status_reason, booking_id::text AS"
            " booking_id FROM blockchain_events",
        )
    }
    audit: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    for r in await _rows(
        engine,
        "SELECT tx_hash, log_index, kind FROM booking_events WHERE tx_hash IS NOT NULL"
        " AND log_index IS NOT NULL",
    ):
        audit[(r.tx_hash.lower(), r.log_index)][r.kind] += 1
    canonical: set[tuple[str, int]] = set()
    for event in events:
        key = (event.identity.tx_hash.lower(), event.identity.log_index)
        canonical.add(key)
        name = f"{type(event).__name__} {key[0]}:{key[1]}"
        row = stored.get(key)
        if row is None:
            problems.append(f"{name}: no blockchain_events row")
            continue
        if row.block_hash.lower() != event.position.block_hash.lower():
            problems.append(f"{name}: row at block {row.block_hash}, chain at a different one")
        if row.status == "FAILED" and not row.status_reason:
            problems.append(f"{name}: FAILED without a reason")
        elif row.status not in ("PROCESSED", "FAILED"):
            problems.append(f"{name}: row {row.status}")
        booking = by_chain_id.get(event.booking_id.lower())
        if booking is None or event in orphans:
            continue  # an orphan's: refunded by its own workflow, checked with the final states
        counts = audit.get(key, Counter())
        applied = sum(counts[k] for k in APPLIED)
        retracted = sum(counts[k] for k in RETRACTED)
        if applied - retracted != 1:
            problems.append(
                f"{name} of booking {booking.id}: applied {applied}, retracted {retracted}"
                f" ({dict(counts)})"
            )
    retractions = Counter(
        {kind: sum(c[kind] for c in audit.values()) for kind in sorted(RETRACTED)}
    )
    # Evidence that the reorg faults reached the workflows (0 everywhere: they hit nothing).
    results.notes.append(
        "reorg retractions the workflows recorded: "
        + ", ".join(f"{kind} {count}" for kind, count in retractions.items())
    )
    for key, row in stored.items():
        if key not in canonical and row.status != "REORGED":
            problems.append(f"row {key[0]}:{key[1]} is not on the chain but {row.status}")
    results.add("each chain event applied exactly once", problems)


async def _money(
    results: CheckResults,
    engine: AsyncEngine,
    reader: EscrowReader,
    events: list[BookingCreatedAndPaid | ServiceCompleted | BookingCancelled],
    by_chain_id: dict[str, Any],
    orphans: OrphanFlows,
) -> None:
    problems: list[str] = []
    held = sum(
        int(b.amount_units or 0)
        for b in by_chain_id.values()
        if BookingStatus(b.status).holds_money
    )
    orphan_paid = orphans.unrefunded
    released: dict[str, int] = defaultdict(int)
    for event in events:
        booking = by_chain_id.get(event.booking_id.lower())
        if isinstance(event, BookingCreatedAndPaid) or booking is None or event in orphans:
            continue  # a payment, or an orphan's money (refunded outside any booking row)
        released[booking.id] += _released(event)
    owed = await reader.total_owed()
    balance = await reader.usdc_balance_of(reader.address)
    expected = held + owed + sum(orphan_paid.values())
    if balance != expected:
        problems.append(
            f"escrow holds {balance} units; held {held} + owed {owed} + unrefunded orphans"
            f" {sum(orphan_paid.values())} = {expected} (difference {balance - expected})"
        )
    recorded: dict[str, int] = defaultdict(int)
    for sql in (
        "SELECT booking_id::text AS b, sum(amount_units) AS total FROM provider_earnings"
        " WHERE reverted_at IS NULL GROUP BY booking_id",
        "SELECT booking_id::text AS b, sum(platform_amount_units + inviter_amount_units) AS total"
        " FROM platform_fees WHERE reverted_at IS NULL GROUP BY booking_id",
        "SELECT booking_id::text AS b, sum(customer_amount_units + provider_amount_units"
        " + platform_amount_units + inviter_amount_units) AS total FROM refunds"
        " WHERE reverted_at IS NULL GROUP BY booking_id",
    ):
        for r in await _rows(engine, sql):
            recorded[r.b] += int(r.total)
    for booking_id in sorted(set(recorded) | set(released)):
        if recorded[booking_id] != released[booking_id]:
            problems.append(
                f"booking {booking_id}: Postgres recorded {recorded[booking_id]} released,"
                f" the chain released {released[booking_id]}"
            )
    received = await _rows(
        engine, "SELECT tx_hash, log_index FROM blockchain_events WHERE status = 'RECEIVED'"
    )
    problems += [f"event {r.tx_hash}:{r.log_index} still RECEIVED" for r in received]
    problems += await _shared_invariants(engine, reader, results)
    results.add("money invariants", problems)


async def _shared_invariants(
    engine: AsyncEngine, reader: EscrowReader, results: CheckResults
) -> list[str]:
    """The reconciliation's own invariant check, once it is implemented."""
    from activities.reconcile.invariants import check_invariants
    from db.engine import make_session_factory

    try:
        report = await check_invariants(
            make_session_factory(engine), reader, received_grace=timedelta(seconds=0)
        )
    except NotImplementedError:
        results.notes.append("activities.invariants.check_invariants not implemented yet")
        return []
    return [
        f"{name}: {detail}"
        for name, result in report.results.items()
        if not result.holds
        for detail in (result.details or [f"{result.violations} violation(s)"])
    ]


def in_outage(at: float, windows: list[FaultWindow]) -> bool:
    return any(
        w.kind in OUTAGES and w.start - 1.0 <= at <= w.end + OUTAGE_GRACE_SECONDS for w in windows
    )


def _api(
    results: CheckResults, calls: list[ApiCall], windows: list[FaultWindow], origin: float
) -> None:
    problems: list[str] = []
    behind = 0
    for c in calls:
        if c.status is None or c.status < 500:
            continue
        if c.status == 503 and in_outage(c.at, windows):
            continue
        # The reverse proxy's answer for a request its replica died holding.
        if c.status == 502 and c.code == BAD_GATEWAY and _overlaps(c.at, c.at, windows, KILLED_API):
            continue
        if c.status == 503 and c.code == WORKER_BEHIND:
            behind += 1
            continue
        problems.append(f"{c.method} {c.route}: HTTP {c.status} {c.code} at +{c.at - origin:.1f}s")
    if behind:
        results.notes.append(
            f"{behind} x 503 {WORKER_BEHIND} outside a fault window: the worker did not record"
            " a new booking within the API's wait (a loaded machine); retried with the same key"
        )
    results.add("no 5xx except 503 in an outage", problems)


def _overlaps(
    start: float,
    end: float,
    windows: list[FaultWindow],
    kinds: frozenset[FaultKind] | None = None,
    grace: float = OUTAGE_GRACE_SECONDS,
) -> bool:
    """Whether [start, end] meets a fault window (of `kinds`), `grace` after it included."""
    return any(
        (kinds is None or w.kind in kinds) and w.start - 1.0 <= end and start <= w.end + grace
        for w in windows
    )


def _attacks(
    results: CheckResults, log: AdversaryLog, windows: list[FaultWindow], origin: float
) -> None:
    refused: list[str] = []
    faulted = 0
    for r in log.refusals:
        if r.refused:
            continue
        unanswered = r.status is None or r.status >= 500
        # Streams held while the API was killed went with it, and so did their count.
        restarted = r.wanted == (429,) and _overlaps(
            r.started, r.at, windows, frozenset({FaultKind.KILL_API})
        )
        if (unanswered and _overlaps(r.started, r.at, windows)) or restarted:
            faulted += 1
            continue
        wanted = "/".join(str(w) for w in r.wanted) or "a 4xx"
        refused.append(
            f"{r.attack.value}: {r.action} (booking {r.booking_id}): HTTP {r.status} {r.code},"
            f" wanted {wanted} at +{r.at - origin:.1f}s"
        )
    if faulted:
        results.notes.append(f"{faulted} attacker requests not judged: a fault was under way")
    results.add(ATTACKS_REFUSED, refused)

    reverted = [
        f"{t.attack.value}: {t.action}: tx {t.tx_hash} reverted={t.reverted}, attacker's USDC"
        f" moved {t.usdc_moved}, escrow logs {t.escrow_logs}"
        for t in log.reverts
        if not t.reverted or t.usdc_moved != 0 or t.escrow_logs != 0
    ]
    results.add(ATTACKS_REVERTED, reverted)
    guards = Counter(f"{t.action}: {t.error or 'no revert'}" for t in log.reverts)
    results.notes += [f"attack transaction {guard} x{n}" for guard, n in sorted(guards.items())]

    blocked: list[str] = []
    cut_short = 0
    for v in log.victims:
        if v.ok:
            continue
        if not v.observed and v.status is None and _overlaps(v.started, v.ended, windows):
            cut_short += 1
            continue
        blocked.append(
            f"{v.attack.value}: {v.action} (booking {v.booking_id}): {v.detail}"
            f" at +{v.ended - origin:.1f}s"
        )
    if cut_short:
        results.notes.append(f"{cut_short} victim flows cut short by a fault (not refused)")
    results.add(VICTIMS_SERVED, blocked)
    results.notes += log.notes
    for burn in log.burns:
        results.notes.append(
            f"budget burn on {burn.booking_id}: {burn.answered} answered 200 with"
            f" {burn.authorizations} distinct authorization(s), then {burn.refusal or 'never refused'}"
        )


async def _victims_settled(
    results: CheckResults,
    engine: AsyncEngine,
    expectations: list[Expectation],
    events: list[BookingCreatedAndPaid | ServiceCompleted | BookingCancelled],
    bookings: list[Any],
) -> None:
    status = {str(b.id): b.status for b in bookings}
    refund_rows = Counter(r.b for r in await _rows(engine, REFUND_AUDIT_SQL))
    by_booking: dict[str, list[Any]] = defaultdict(list)
    for event in events:
        by_booking[event.booking_id.lower()].append(event)
    problems: list[str] = []
    for e in expectations:
        name = f"{e.attack.value}: booking {e.booking_id}"
        found = status.get(e.booking_id)
        if found != e.status:
            problems.append(f"{name}: {found}, expected {e.status}")
        problems += [f"{name}: {p}" for p in _money_of(e, by_booking[e.chain_booking_id.lower()])]
        if e.no_operator_refund and refund_rows[e.booking_id]:
            problems.append(f"{name}: an operator refund was sent or owed")
    results.add(VICTIMS_SETTLED, problems)


def _money_of(e: Expectation, events: list[Any]) -> list[str]:
    """What the chain says was paid in and out, against the victim's expectation."""
    paid = [x for x in events if isinstance(x, BookingCreatedAndPaid)]
    if len(paid) != 1:
        return [f"{len(paid)} payments on chain"]
    p = paid[0]
    problems = [
        f"paid {label} {got}, expected {want}"
        for label, got, want in (
            ("amount", p.amount, e.amount),
            ("by", p.customer.lower(), e.customer.lower()),
            ("to provider", p.provider.lower(), e.provider.lower()),
            ("with inviter", p.inviter.lower(), e.inviter.lower()),
        )
        if got != want
    ]
    completed = [x for x in events if isinstance(x, ServiceCompleted)]
    cancelled = [x for x in events if isinstance(x, BookingCancelled)]
    if e.status == "COMPLETED":
        if cancelled:
            problems.append("cancelled on chain (a refund) though it should complete")
        if len(completed) != 1 or _released(completed[0]) != e.amount:
            problems.append(f"completion on chain released {[_released(x) for x in completed]}")
    elif e.status == "CANCELLED":
        if len(cancelled) != 1 or _released(cancelled[0]) != e.amount:
            problems.append(f"cancellation on chain released {[_released(x) for x in cancelled]}")
        elif cancelled[0].customer_amount != e.customer_refund:
            problems.append(
                f"customer got back {cancelled[0].customer_amount}, expected {e.customer_refund}"
            )
    return problems


def _percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of a sorted, non-empty list."""
    return sorted_values[max(0, math.ceil(share * len(sorted_values)) - 1)]


def honest_latency(calls: list[ApiCall], windows: list[FaultWindow]) -> dict[str, float]:
    """Answer times of the honest requests (victims' included, attackers' not): all of them,
    and those that overlapped no fault window, whose tail the faults do not set."""
    answered = [c for c in calls if not c.adversarial and c.seconds is not None]
    every = sorted(c.seconds for c in answered if c.seconds is not None)
    calm = sorted(
        c.seconds
        for c in answered
        if c.seconds is not None
        and not _overlaps(c.at - c.seconds, c.at, windows, grace=LATENCY_GRACE_SECONDS)
    )
    figures: dict[str, float] = {"requests": len(every), "requests_outside_faults": len(calm)}
    if every:
        figures |= {
            "p50_s": round(_percentile(every, 0.50), 4),
            "p99_s": round(_percentile(every, 0.99), 4),
            "max_s": round(every[-1], 4),
        }
    if calm:
        figures |= {
            "p50_outside_faults_s": round(_percentile(calm, 0.50), 4),
            "p99_outside_faults_s": round(_percentile(calm, 0.99), 4),
        }
    return figures
