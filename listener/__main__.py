"""`python -m listener`: follow the escrow's events until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from bookme.logging import configure_logging
from bookme.settings import Settings, SettingsError
from listener.app import run
from listener.lock import TransactionPoolerDetected


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m listener", description=__doc__)
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus metrics here (0 = off; default BOOKME_LISTENER_METRICS_PORT)",
    )
    parser.add_argument(
        "--start-block",
        type=int,
        default=None,
        help="first block to scan when no checkpoint exists (default: the deployment block)",
    )
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await run(settings, stop, metrics_port=args.metrics_port, start_block=args.start_block)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        asyncio.run(_main(args))
    except (SettingsError, TransactionPoolerDetected) as exc:
        print(f"listener: {exc}", file=sys.stderr)  # noqa: T201 - CLI entry point
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
