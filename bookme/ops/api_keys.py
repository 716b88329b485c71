"""`bookme api-keys create|list|revoke|rotate`: the marketplace's server-to-server keys.

A key is printed once, at creation; only its SHA-256 is stored (db/api_keys.py). Rotation is
create-then-revoke with an overlap: `rotate` creates a key for the same subject and lets the old
one work for `--overlap-hours` more, so the marketplace can deploy the new key in between.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from bookme.ops.deps import database
from bookme.ops.errors import OpsError
from bookme.settings import Settings
from db.api_keys import (
    CreatedKey,
    create_api_key,
    expire_api_key,
    key_is_live,
    list_api_keys,
    revoke_api_key,
)
from db.identity_models import ApiKey

COMMAND = "api-keys"
DEFAULT_SUBJECT = "marketplace"


def add_api_key_commands(commands: Any) -> None:
    """Register `bookme api-keys ...` on the `bookme` subparsers."""
    parser = commands.add_parser(
        COMMAND,
        help="manage the marketplace's server-to-server API keys (role service)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key and print it (shown only once)")
    _key_options(create)
    actions.add_parser("list", help="list keys: id, subject, name, state (never the secret)")
    revoke = actions.add_parser("revoke", help="revoke a key now")
    revoke.add_argument("key_id", help="the key's id (12 hex, as `list` prints it)")
    rotate = actions.add_parser(
        "rotate", help="create a key for the same subject; the old one expires after the overlap"
    )
    rotate.add_argument("key_id", help="the key being replaced")
    rotate.add_argument(
        "--overlap-hours", type=float, default=24.0, help="how long the old key keeps working"
    )
    rotate.add_argument("--name", default=None, help="the new key's name (default: the old one's)")
    rotate.add_argument("--expires-in-days", type=float, default=None)


def _key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--subject",
        default=DEFAULT_SUBJECT,
        help="who the key acts as (keep it across rotations: idempotency keys are scoped to it)",
    )
    parser.add_argument("--name", default="", help="a label, e.g. where the key is deployed")
    parser.add_argument(
        "--expires-in-days", type=float, default=None, help="default: until revoked"
    )


def run_api_key_command(
    args: argparse.Namespace, settings: Settings, out: IO[str] = sys.stdout
) -> int:
    return asyncio.run(run_api_key_command_async(args, settings, out))


async def run_api_key_command_async(
    args: argparse.Namespace, settings: Settings, out: IO[str]
) -> int:
    """Run one `bookme api-keys` action; an expected failure is one line on stderr and exit 2."""
    try:
        return await _run(args, settings, out)
    except OpsError as exc:
        print(f"bookme {COMMAND}: {exc}", file=sys.stderr)  # noqa: T201 - the CLI's error line
        return 2


async def _run(args: argparse.Namespace, settings: Settings, out: IO[str]) -> int:
    now = datetime.now(UTC)
    async with database(settings) as sessions, sessions.begin() as session:
        if args.action == "list":
            rows = await list_api_keys(session)
            for row in rows:
                out.write(_describe(row, now) + "\n")
            if not rows:
                out.write("no API keys\n")
            return 0
        if args.action == "revoke":
            if not await revoke_api_key(session, args.key_id, now=now):
                raise OpsError(f"no API key {args.key_id}")
            out.write(f"revoked {args.key_id}\n")
            return 0
        if args.action == "rotate":
            old = await session.get(ApiKey, args.key_id)
            if old is None or not key_is_live(old, now):
                raise OpsError(f"no live API key {args.key_id} to rotate")
            subject, name = old.subject, args.name if args.name is not None else old.name
            await expire_api_key(session, old.key_id, at=now + timedelta(hours=args.overlap_hours))
        else:
            subject, name = args.subject, args.name
        expires = (
            now + timedelta(days=args.expires_in_days) if args.expires_in_days is not None else None
        )
        created = await create_api_key(session, subject=subject, name=name, expires_at=expires)
    _print_created(created, out)
    return 0


def _print_created(created: CreatedKey, out: IO[str]) -> None:
    expires = created.expires_at.isoformat() if created.expires_at else "never (until revoked)"
    out.write(
        f"{created.key}\n"
        f"# id {created.key_id}, subject {created.subject!r}, expires {expires}.\n"
        "# Shown once and not stored: put it in the marketplace's secret store now. Send it as\n"
        "# `Authorization: Bearer <key>`.\n"
    )


def _describe(row: ApiKey, now: datetime) -> str:
    if row.revoked_at is not None:
        state = f"revoked {row.revoked_at.isoformat()}"
    elif row.expires_at is not None and row.expires_at <= now:
        state = f"expired {row.expires_at.isoformat()}"
    elif row.expires_at is not None:
        state = f"live until {row.expires_at.isoformat()}"
    else:
        state = "live"
    return (
        f"{row.key_id}  {row.subject}  {row.name or '-'}  {state}  created {row.created_at:%F %T}"
    )
