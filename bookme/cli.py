"""The `bookme` command: one entry point for every process and operator task."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bookme.logging import configure_logging
from bookme.ops.api_keys import add_api_key_commands, run_api_key_command
from bookme.ops.commands import OPERATOR_COMMANDS, add_operator_commands, run_operator_command
from bookme.ops.deploy_args import __doc__ as deploy_help
from bookme.ops.deploy_args import add_deploy_arguments
from bookme.ops.rebuild import add_rebuild_command, run_rebuild_command
from bookme.settings import Settings, SettingsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bookme", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("dev", help="run the whole system on embedded defaults until Ctrl-C")
    migrate = commands.add_parser("migrate", help="apply database migrations (alembic upgrade)")
    migrate.add_argument("--revision", default="head")
    deploy = commands.add_parser(
        "deploy",
        help="deploy the escrow and its owner timelock (any chain; --dry-run first)",
        description=deploy_help,
    )
    add_deploy_arguments(deploy)
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
    add_api_key_commands(commands)
    add_rebuild_command(commands)
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
    if args.command == "api-keys":
        return run_api_key_command(args, settings)
    if args.command == "rebuild":
        return run_rebuild_command(args, settings)
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
        if not settings.rpc_urls:
            parser.error("BOOKME_RPC_URLS is not set (make dev deploys on its embedded anvil)")
        from bookme.ops.deploy import run_deploy_command

        return run_deploy_command(args, settings)
    if args.command == "demo":
        from bookme.demo import run_demo

        return run_demo(settings, stack=args.stack, keep=args.keep, out=sys.stdout)
    parser.error(f"unknown command {args.command}")
