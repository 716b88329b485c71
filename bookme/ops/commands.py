"""The operator subcommands of ``bookme``: their arguments, help texts and dispatch."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

from bookme.ops.errors import OpsError
from bookme.settings import Settings

HELP: dict[str, tuple[str, str]] = {
    "show": (
        "show one booking as Postgres, its workflow and the contract see it",
        "Prints the DB row, the workflow's `status` query (with a Temporal UI history link) and "
        "the contract's getBooking side by side; rows where they disagree are marked DIVERGES. "
        "Use it first when a booking looks wrong (support ticket, stuck-booking alert).",
    ),
    "reconcile": (
        "run a reconciliation now (chain vs Postgres vs workflows)",
        "Starts reconcile-manual-<uuid> on the worker: compares every non-terminal and recently "
        "touched booking (all with --full), re-reads contract logs for lost events, repairs "
        "through the booking workflows and checks the money invariants. Use it after an "
        "incident (listener down, RPC outage) instead of waiting for the 6-hourly schedule. "
        "Exit code 1 if an invariant is broken (with --wait).",
    ),
    "emergency-cancel": (
        "refund a paid booking in full to its customer (operator key, on chain)",
        "Calls the booking workflow's emergency_cancel update, which sends "
        "emergencyCancelBooking from the operator key and records the refund. If the workflow "
        "is closed, missing or refuses and the chain still shows the booking PAID, sends the "
        "refund itself with the operator key (never twice: the chain is read first) and records "
        "it in Postgres (booking_events; blockchain_events for an orphan payment). Use it when a "
        "booking must be unwound and neither party can cancel it (fraud, provider gone).",
    ),
    "redrive": (
        "re-drive a FAILED booking after its cause is fixed",
        "Calls the booking workflow's redrive update: it re-reads the chain and applies what "
        "happened there, or retries a refund that failed. Use it once the cause of the "
        "failure (RPC outage, empty operator wallet, bad config) is fixed.",
    ),
    "pause": (
        "pause the escrow contract: no new payments (operator or owner key)",
        "Completion, cancellation, refunds and withdrawals go on while paused. Use it when "
        "payments must stop now: signer key leaked, invariant broken, contract bug suspected.",
    ),
    "unpause": (
        "unpause the escrow contract (owner key, through the owner timelock)",
        "Accepts payments again. Scheduled on the owner timelock: runs at once when its delay "
        "is 0, otherwise prints when `bookme owner-execute` can run it. Use it once the cause "
        "of the pause is fixed and verified.",
    ),
    "rotate-signer": (
        "point the contract's EIP-712 signer at a new key (owner key, through the owner timelock)",
        "Schedules setSigner(address of the new key) on the owner timelock (executed at once "
        "when its delay is 0, else later with `bookme owner-execute`) and verifies it on chain. "
        "The key itself is never printed. Afterwards the command says which setting to change "
        "on the workers. Use it when the signer key leaked (after revoke-signer) or on a "
        "scheduled rotation.",
    ),
    "revoke-signer": (
        "disable the contract's signer at once (operator or owner key)",
        "Sends revokeSigner: every payment and cancellation authorization is refused from the "
        "next block; completion, emergency refunds and withdrawals go on. Use it the moment "
        "the signer key may have leaked; then rotate-signer sets a new one after the delay.",
    ),
    "owner-execute": (
        "execute an owner call scheduled on the owner timelock (owner key)",
        "Runs the operation the unpause/rotate-signer step scheduled, once the timelock's "
        "delay has passed; refuses before that. Use it when the schedule step's time has come, "
        "with the operation id and --from-block it printed.",
    ),
    "replay": (
        "replay a workflow's history against the current workflow code",
        "Fetches the history of booking-<id> (or any workflow id) from Temporal and replays it "
        "with the workflow code of this checkout. Use it before deploying workflow changes, or "
        "when a worker reports a non-determinism error. Exit code 1 on a determinism failure.",
    ),
    "unknown-statuses": (
        "list the statuses in the bookings table that this service does not use",
        "Counts the rows of each such status (with the first and last created_at). Only the "
        "marketplace's own rows can hold one: the service never changes them and does not act "
        "on them. Use it after adopting the marketplace's bookings table (the migration logs "
        "the same list once), or when the marketplace's app starts writing a new status.",
    ),
    "retention": (
        "apply the data retention policy now (the daily schedule does it too)",
        "Deletes REORGED and old PROCESSED blockchain_events, expired signature_nonces of "
        "settled bookings and old rate-limit counters, per the BOOKME_RETENTION_* settings "
        "(docs/runbook.md, 'Data retention'). --dry-run only counts.",
    ),
    "webhooks": (
        "manage the marketplace's webhook endpoints and replay events",
        "add prints the endpoint's signing secret once; rotate prints a new one while the old one "
        "keeps signing for BOOKME_WEBHOOK_SECRET_OVERLAP_SECONDS (two v1= signatures); remove "
        "stops deliveries to it; replay sends events again (--event, --booking, --since/--until). "
        "Use it when the marketplace adds a receiver or rotates its secret, and to resend events "
        "after an endpoint was down longer than the retry horizon and its deliveries died.",
    ),
}


def add_operator_commands(commands: Any) -> None:
    """Register every operator subcommand on the ``bookme`` subparsers."""

    def add(name: str) -> argparse.ArgumentParser:
        summary, detail = HELP[name]
        parser: argparse.ArgumentParser = commands.add_parser(
            name, help=summary, description=f"{summary}. {detail}"
        )
        return parser

    add("show").add_argument("booking", help="booking id (UUID) or chain booking id (0x + 64 hex)")
    reconcile = add("reconcile")
    reconcile.add_argument("--full", action="store_true", help="every booking and the whole chain")
    reconcile.add_argument(
        "--wait", action="store_true", help="follow the run with a progress bar, print the report"
    )
    for name in ("emergency-cancel", "redrive"):
        parser = add(name)
        parser.add_argument(
            "booking",
            help="booking id (UUID) or workflow id"
            + (
                ", or the chain booking id of an orphan payment"
                if name == "emergency-cancel"
                else ""
            ),
        )
        parser.add_argument(
            "--reason",
            required=name == "emergency-cancel",
            default="cause fixed, re-driven",
            help="why (recorded in the booking's history)",
        )
        parser.add_argument(
            "--operator", default=getpass.getuser(), help="who asks (default: your login)"
        )
    add("pause")
    add("unpause")
    add("rotate-signer").add_argument(
        "--new-key-file", type=Path, required=True, help="file holding the new signer's private key"
    )
    add("revoke-signer")
    execute = add("owner-execute")
    execute.add_argument("operation", help="the timelock operation id (0x + 64 hex)")
    execute.add_argument(
        "--from-block",
        type=int,
        default=0,
        help="block the operation was scheduled in or before (printed by the schedule step)",
    )
    add("replay").add_argument("booking", help="booking id (UUID) or workflow id")
    add("unknown-statuses")
    add("retention").add_argument(
        "--dry-run", action="store_true", help="count what would be deleted, delete nothing"
    )
    from bookme.ops.webhooks import add_webhook_arguments

    add_webhook_arguments(add("webhooks"))


def _coroutine(
    args: argparse.Namespace, settings: Settings, out: IO[str]
) -> Callable[[], Awaitable[int]]:
    command = args.command
    if command == "show":
        from bookme.ops.show import show

        return lambda: show(settings, args.booking, out)
    if command == "reconcile":
        from bookme.ops.reconcile import reconcile

        return lambda: reconcile(settings, full=args.full, wait=args.wait, out=out)
    if command in ("emergency-cancel", "redrive"):
        from bookme.ops.booking_updates import redrive
        from bookme.ops.emergency_refund import emergency_cancel

        update = emergency_cancel if command == "emergency-cancel" else redrive
        return lambda: update(
            settings, args.booking, operator=args.operator, reason=args.reason, out=out
        )
    if command in ("pause", "unpause"):
        from bookme.ops.contract_admin import set_paused

        return lambda: set_paused(settings, paused=command == "pause", out=out)
    if command == "rotate-signer":
        from bookme.ops.contract_admin import rotate_signer

        return lambda: rotate_signer(settings, new_key_file=args.new_key_file, out=out)
    if command == "revoke-signer":
        from bookme.ops.contract_admin import revoke_signer

        return lambda: revoke_signer(settings, out=out)
    if command == "owner-execute":
        from bookme.ops.contract_admin import execute_owner_operation

        return lambda: execute_owner_operation(
            settings, operation_id=args.operation, from_block=args.from_block, out=out
        )
    if command == "unknown-statuses":
        from bookme.ops.unknown_statuses import list_unknown_statuses

        return lambda: list_unknown_statuses(settings, out)
    if command == "replay":
        from bookme.ops.replay import replay

        return lambda: replay(settings, args.booking, out)
    if command == "webhooks":
        from bookme.ops.webhooks import webhooks

        return lambda: webhooks(settings, args, out)
    from bookme.ops.retention import retention

    return lambda: retention(settings, dry_run=args.dry_run, out=out)


async def run_operator_command_async(
    args: argparse.Namespace, settings: Settings, out: IO[str]
) -> int:
    """Run one parsed operator command; an expected failure is one line on stderr and exit 2."""
    try:
        return await _coroutine(args, settings, out)()
    except OpsError as exc:
        print(f"bookme {args.command}: {exc}", file=sys.stderr)  # noqa: T201 - the CLI's error line
        return 2


def run_operator_command(
    args: argparse.Namespace, settings: Settings, out: IO[str] = sys.stdout
) -> int:
    return asyncio.run(run_operator_command_async(args, settings, out))


OPERATOR_COMMANDS = frozenset(HELP)
