"""``bookme webhooks add|list|rotate|remove|replay``: the marketplace's endpoints and their secrets.

A secret is printed once, by ``add`` and ``rotate``, and stored encrypted; nothing else ever
shows it. ``replay`` queues events again (by event id, booking or time range) and wakes the
relay, so an endpoint that was down for longer than the retry horizon loses nothing.
"""

from __future__ import annotations

import argparse
import uuid
from datetime import datetime, timedelta
from typing import IO, Any

from bookme.ops.deps import connect_temporal, database
from bookme.ops.errors import OpsError
from bookme.settings import Environment, Settings
from db.webhook_endpoints import (
    EndpointNotFound,
    ReplaySelection,
    SecretBox,
    check_url,
    create_endpoint,
    list_endpoints,
    remove_endpoint,
    replay,
    rotate_secret,
)
from workflows.webhook_relay import WEBHOOK_RELAY_WORKFLOW_ID, WebhookRelayWorkflow


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a UUID") from None


def _time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset (e.g. +00:00)")
    return moment


def add_webhook_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="webhooks_action", required=True)
    add = actions.add_parser("add", help="register an endpoint; prints its secret once")
    add.add_argument("url", help="https:// URL the events are POSTed to")
    add.add_argument("--description", default="", help="whose endpoint it is")
    actions.add_parser("list", help="endpoints with their pending and dead deliveries")
    for name, text in (("rotate", "a new secret (printed once)"), ("remove", "stop sending")):
        actions.add_parser(name, help=text).add_argument("endpoint", type=_uuid)
    again = actions.add_parser("replay", help="send events again (to every endpoint, or one)")
    again.add_argument("--event", type=_uuid, help="one event id")
    again.add_argument("--booking", type=_uuid, help="every event of one booking")
    again.add_argument("--since", type=_time, help="events created at or after (ISO 8601)")
    again.add_argument("--until", type=_time, help="events created before (ISO 8601)")
    again.add_argument("--endpoint", type=_uuid, help="only to this endpoint")


async def webhooks(settings: Settings, args: argparse.Namespace, out: IO[str]) -> int:
    """Run one ``bookme webhooks`` action."""
    try:
        box = SecretBox(settings.webhook_encryption_key.get_secret_value())
    except ValueError as exc:
        raise OpsError(str(exc)) from None
    action = args.webhooks_action
    try:
        async with database(settings) as sessions, sessions.begin() as session:
            if action == "add":
                await _add(
                    session,
                    box,
                    args,
                    out,
                    https_only=settings.environment is Environment.PRODUCTION,
                )
            elif action == "list":
                _print_list(await list_endpoints(session), out)
            elif action == "rotate":
                overlap = timedelta(seconds=settings.webhook_secret_overlap_seconds)
                secret, until = await rotate_secret(session, box, args.endpoint, overlap=overlap)
                out.write(f"new secret (shown once): {secret}\n")
                out.write(f"the previous secret also signs until {until.isoformat()}\n")
            elif action == "remove":
                await remove_endpoint(session, args.endpoint)
                out.write(f"removed {args.endpoint}: nothing more is sent to it\n")
            else:
                queued = await _replay(session, args)
                out.write(f"queued {queued} deliveries again\n")
    except EndpointNotFound as exc:
        raise OpsError(str(exc)) from None
    if action == "replay":
        await _wake_relay(settings, out)
    return 0


async def _add(
    session: Any, box: SecretBox, args: argparse.Namespace, out: IO[str], *, https_only: bool
) -> None:
    try:
        url = check_url(args.url, https_only=https_only)
    except ValueError as exc:
        raise OpsError(str(exc)) from None
    endpoint_id, secret = await create_endpoint(session, box, url=url, description=args.description)
    out.write(f"endpoint {endpoint_id} -> {url}\n")
    out.write(f"secret (shown once, store it in the receiver): {secret}\n")


def _print_list(endpoints: list[Any], out: IO[str]) -> None:
    if not endpoints:
        out.write("no webhook endpoints (bookme webhooks add <url>)\n")
    for e in endpoints:
        out.write(
            f"{e.id}  {e.url}  secrets={e.active_secrets} pending={e.pending} dead={e.dead}"
            f"  {e.description}\n"
        )


async def _replay(session: Any, args: argparse.Namespace) -> int:
    selection = ReplaySelection(
        event_id=args.event,
        booking_id=args.booking,
        since=args.since,
        until=args.until,
        endpoint_id=args.endpoint,
    )
    if selection.is_empty():
        raise OpsError("say what to replay: --event, --booking or --since")
    return await replay(session, selection)


async def _wake_relay(settings: Settings, out: IO[str]) -> None:
    """Best effort: the relay finds the rows at its next round anyway."""
    try:
        client = await connect_temporal(settings)
        await client.get_workflow_handle(WEBHOOK_RELAY_WORKFLOW_ID).signal(
            WebhookRelayWorkflow.wake
        )
    except Exception as exc:
        out.write(f"(the relay was not woken: {exc}; it sends them at its next round)\n")
