"""`make chaos`: a mixed workload under injected faults, then every invariant checked.

Reproducible from the seed printed first: ``python -m bench.chaos --seed N``.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from bench.chaos.config import ChaosConfig
from bench.chaos.harness import run_chaos
from bench.chaos.report import passed, render, write_json
from bookme.logging import configure_logging


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=None, help="reproduce a run (default: random)")
    parser.add_argument("--bookings", type=int, default=500, help="bookings in the workload")
    parser.add_argument("--faults", type=int, default=16, help="faults injected (at least 12)")
    parser.add_argument(
        "--duration", type=float, default=300.0, help="seconds over which bookings and faults start"
    )
    parser.add_argument(
        "--adversary-share",
        type=float,
        default=ChaosConfig.adversary_share,
        help="share of the bookings that are attacks (0 for an honest-only run)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the stack's data and logs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    seed = args.seed if args.seed is not None else secrets.randbelow(10**9)
    command = (
        f"python -m bench.chaos --seed {seed} --bookings {args.bookings} "
        f"--faults {args.faults} --duration {args.duration:g}"
        f" --adversary-share {args.adversary_share:g}"
    )
    console = Console()
    console.print(f"chaos seed {seed}; reproduce with: {command}")
    configure_logging("ERROR", False)
    if not 0.0 <= args.adversary_share <= 1.0:
        console.print("--adversary-share must be between 0 and 1")
        return 2
    config = ChaosConfig(
        seed=seed,
        bookings=args.bookings,
        faults=args.faults,
        duration=args.duration,
        adversary_share=args.adversary_share,
    )
    workdir = Path(tempfile.mkdtemp(prefix=f"bookme-chaos-{seed}-"))
    summary = asyncio.run(run_chaos(config, workdir, command, say=console.print))
    render(summary, console)
    console.print(f"results: {write_json(summary)}")
    ok = passed(summary)
    if ok and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        console.print(f"stack data and logs: {workdir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
