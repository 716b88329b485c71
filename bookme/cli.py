"""The `bookme` command: one entry point for every process and operator task."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bookme.logging import configure_logging
from bookme.ops.commands import OPERATOR_COMMANDS, add_operator_commands, run_operator_command
from bookme.settings import Settings, SettingsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bookme", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("dev", help="run the whole system on embedded defaults until Ctrl-C")
    migrate = commands.add_parser("migrate", help="apply database migrations (alembic upgrade)")
    migrate.add_argument("--revision", default="head")
    deploy = commands.add_parser(
        "deploy",
        help="deploy MockUSDC + BookingEscrow on a local chain with anvil's published roles",
    )
    deploy.add_argument(
        "--if-missing",
        action="store_true",
        help="keep the deployment file's contracts when the chain still has them",
    )
    demo = commands.add_parser(
        "demo", help="drive five real bookings through the API and wallets; exit 1 if any is off"
    )
    demo.add_argument(
        "--stack",
        choices=("auto", "running", "private"),
        default="auto",
        help="auto: the running `make dev` if its timers allow, else a private stack",
    )
    demo.add_argument(
        "--keep", action="store_true", help="keep a private stack running after the demo"
    )
    add_operator_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    try:
        settings = Settings()
    except SettingsError as exc:
        print(f"bookme: {exc}", file=sys.stderr)  # noqa: T201 - the CLI's error line
        return 2
    configure_logging(settings.log_level, settings.log_json)

    if args.command in OPERATOR_COMMANDS:
        return run_operator_command(args, settings)
    if args.command == "dev":
        from bookme.dev import run_dev

        return run_dev(settings)
    if args.command == "migrate":
        from db.migrate import upgrade

        if not settings.database_url:
            parser.error("BOOKME_DATABASE_URL is not set (make dev migrates its embedded database)")
        upgrade(settings.database_url, args.revision)
        return 0
    if args.command == "deploy":
        import asyncio

        from bookme.devchain import deploy_for_local_chain

        if not settings.rpc_urls:
            parser.error("BOOKME_RPC_URLS is not set (make dev deploys on its embedded anvil)")
        deployment = asyncio.run(deploy_for_local_chain(settings, keep_existing=args.if_missing))
        print(deployment.escrow)  # noqa: T201 - the command's output
        return 0
    if args.command == "demo":
        from bookme.demo import run_demo

        return run_demo(settings, stack=args.stack, keep=args.keep, out=sys.stdout)
    parser.error(f"unknown command {args.command}")
