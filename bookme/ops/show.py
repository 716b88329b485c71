"""``bookme show``: one booking as Postgres, its workflow and the contract each see it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from bookme.ops.booking_refs import is_chain_booking_id
from bookme.ops.deps import connect_temporal, database, escrow_reader, history_url
from bookme.ops.errors import NotManaged, OpsError
from bookme.ops.temporal_errors import answered
from bookme.settings import Settings
from chain.eip712 import chain_booking_id
from chain.escrow import OnChainBooking, OnChainBookingStatus
from db.marketplace_rows import unmanaged_status
from db.models import Booking
from workflows import booking_workflow_id
from workflows.chain_agreement import agrees_with_chain
from workflows.client import BookingClient
from workflows.types import ZERO_ADDRESS, BookingStatus, BookingView, OnChainStatus

S = BookingStatus
MISSING = "-"


@dataclass(frozen=True, kw_only=True)
class Row:
    field: str
    db: str
    workflow: str
    chain: str
    diverges: bool


@dataclass(frozen=True, kw_only=True)
class Sides:
    booking_id: str
    chain_booking_id: str
    db: Booking | None
    view: BookingView | None
    workflow_note: str
    history: str
    chain: OnChainBooking | None
    chain_note: str


def _text(value: object) -> str:
    if value is None:
        return MISSING
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds")
    return str(value)


def _same(*values: object) -> bool:
    """Values shown on more than one side agree (addresses case-insensitively)."""
    shown = {str(v).lower() for v in values if v is not None and v != ""}
    return len(shown) <= 1


# Facts compared as plain values: (row, Postgres column, workflow view field, on-chain field).
# None: that side does not know the fact. "" on chain: the chain booking id `show` asked for.
_FACTS: tuple[tuple[str, str, str | None, str | None], ...] = (
    ("amount (units)", "amount_units", "amount_units", "amount"),
    ("customer", "customer_wallet", "customer_wallet", "customer"),
    ("provider", "provider_wallet", "provider_wallet", "provider"),
    ("inviter", "inviter_wallet", "inviter_wallet", "inviter"),
    ("chain booking id", "blockchain_booking_id", "chain_booking_id", ""),
    ("payment tx", "blockchain_tx_hash", None, None),
    ("completion tx", "completion_tx_hash", "completion_tx_hash", None),
    ("cancellation/refund tx", "cancellation_tx_hash", "refund_tx_hash", None),
)


def _field(obj: object, name: str | None) -> object:
    return getattr(obj, name) if obj is not None and name is not None else None


def _paid(sides: Sides) -> OnChainBooking | None:
    """The on-chain booking, when the contract holds one (not NONE)."""
    chain = sides.chain
    return chain if chain is not None and chain.status is not OnChainBookingStatus.NONE else None


def _status_row(sides: Sides) -> Row:
    db, view, chain = sides.db, sides.view, sides.chain
    diverges = db is not None and view is not None and db.status.value != view.status.value
    if view is not None and chain is not None:
        chain_state = OnChainStatus[chain.status.name]
        diverges |= not agrees_with_chain(BookingStatus(view.status), chain_state)
    return Row(
        field="status",
        db=_text(db.status.value if db else None),
        workflow=_text(view.status.value if view else None),
        chain=_text(chain.status.name if chain is not None else None),
        diverges=diverges,
    )


def _fact_row(
    sides: Sides, name: str, column: str, view_field: str | None, onchain: str | None
) -> Row:
    d, w = _field(sides.db, column), _field(sides.view, view_field)
    c = sides.chain_booking_id if onchain == "" else _field(_paid(sides), onchain)
    if c == ZERO_ADDRESS:
        c = None  # the contract's "no inviter"
    return Row(
        field=name, db=_text(d), workflow=_text(w), chain=_text(c), diverges=not _same(d, w, c)
    )


def _release_row(sides: Sides) -> Row:
    view, paid = sides.view, _paid(sides)
    release = datetime.fromtimestamp(paid.release_time, UTC) if paid else None
    return Row(
        field="release time",
        db=MISSING,
        workflow=_text(view.release_at if view else None),
        chain=_text(release),
        diverges=bool(paid and view and int(view.release_at.timestamp()) != paid.release_time),
    )


def rows(sides: Sides) -> list[Row]:
    """The comparison, one row per fact; ``diverges`` marks disagreement between sides."""
    reason = Row(
        field="reason",
        db=_text(sides.db.status_reason if sides.db else None),
        workflow=_text(sides.view.reason if sides.view else None),
        chain=MISSING,
        diverges=False,
    )
    facts = [_fact_row(sides, *fact) for fact in _FACTS]
    return [_status_row(sides), *facts, _release_row(sides), reason]


async def _db_row(settings: Settings, ref: str) -> Booking | None:
    async with database(settings) as sessions, sessions() as session:
        if is_chain_booking_id(ref):
            where = Booking.blockchain_booking_id == ref.lower()
        else:
            try:
                where = Booking.id == uuid.UUID(ref)
            except ValueError:
                raise OpsError(
                    f"{ref!r} is neither a booking id (UUID) nor a chain booking id"
                ) from None
        row = (
            await session.execute(select(Booking).where(where, Booking.managed))
        ).scalar_one_or_none()
        if row is None:
            foreign = await unmanaged_status(session, where)
            if foreign is not None:
                raise NotManaged(ref, foreign)
        return row


async def gather(settings: Settings, ref: str) -> Sides:
    """Read all three sides; a missing side is shown as such, an unreachable one is an error."""
    db = await _db_row(settings, ref)
    if db is None and is_chain_booking_id(ref):
        raise OpsError(f"no booking row has chain booking id {ref}")
    booking_id = str(db.id) if db is not None else str(uuid.UUID(ref))
    cbid = (db.blockchain_booking_id if db is not None else None) or chain_booking_id(booking_id)
    workflow_id = (db.workflow_id if db is not None else None) or booking_workflow_id(booking_id)
    workflow = BookingClient(await connect_temporal(settings), workflow_id)
    view: BookingView | None = None
    history = history_url(settings, workflow_id)
    try:
        described = await answered(workflow.describe(), workflow_id, "describe")
    except OpsError as exc:
        if "no workflow" not in str(exc):
            raise
        note = "no workflow"
    else:
        history = history_url(settings, workflow_id, described.run_id)
        note = described.status.name if described.status else "unknown"
        view = await answered(workflow.status(), workflow_id, "status")
    async with escrow_reader(settings) as escrow:
        onchain = await escrow.get_booking(cbid)
    return Sides(
        booking_id=booking_id,
        chain_booking_id=cbid,
        db=db,
        view=view,
        workflow_note=note,
        history=history,
        chain=onchain,
        chain_note=f"escrow {escrow.address}",
    )


def render(sides: Sides, out: IO[str]) -> int:
    """Print the table; returns how many rows diverge."""
    console = Console(file=out, width=160, highlight=False)
    table = Table(title=f"booking {sides.booking_id}", show_lines=False)
    table.add_column("field")
    table.add_column("Postgres" + ("" if sides.db is not None else " (no row)"))
    table.add_column(f"workflow ({sides.workflow_note})")
    table.add_column(f"chain ({sides.chain_note})")
    table.add_column("")
    compared = rows(sides)
    for row in compared:
        style = "bold red" if row.diverges else None
        table.add_row(
            row.field,
            row.db,
            row.workflow,
            row.chain,
            "DIVERGES" if row.diverges else "",
            style=style,
        )
    console.print(table)
    console.print(f"history: {sides.history}")
    diverging = sum(row.diverges for row in compared)
    if diverging:
        console.print(
            f"[bold red]{diverging} divergence(s)[/]: `bookme reconcile` repairs what the chain "
            "proves; see docs/runbook.md"
        )
    return diverging


async def show(settings: Settings, ref: str, out: IO[str]) -> int:
    render(await gather(settings, ref), out)
    return 0
