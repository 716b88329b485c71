"""The `bookme` command: one entry point for every process and operator task."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from bookme.logging import configure_logging
from bookme.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bookme", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("dev", help="run the whole system on embedded defaults until Ctrl-C")
    migrate = commands.add_parser("migrate", help="apply database migrations (alembic upgrade)")
    migrate.add_argument("--revision", default="head")
    args = parser.parse_args(argv)

    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)

    if args.command == "dev":
        from bookme.dev import run_dev

        return run_dev(settings)
    if args.command == "migrate":
        from db.migrate import upgrade

        if not settings.database_url:
            parser.error("BOOKME_DATABASE_URL is not set (make dev migrates its embedded database)")
        upgrade(settings.database_url, args.revision)
        return 0
    parser.error(f"unknown command {args.command}")
