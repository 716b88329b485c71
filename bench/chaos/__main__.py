"""`make chaos`: a mixed workload under injected faults, then every invariant checked.

Reproducible from the seed printed first: ``python -m bench.chaos --seed N``. With ``--soak``
(`make soak`): the same run stretched over ``--minutes`` at ``--rate`` bookings a second, faults
at even intervals, every process watched once a minute (bench/chaos/soak.py).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from bench.chaos.config import OUTAGE_PROOF_AHEAD, OUTAGE_PROOF_TIMERS, ChaosConfig
from bench.chaos.harness import run_chaos
from bench.chaos.report import RESULTS_DIR, passed, render, to_json, write_json
from bench.chaos.soak import SoakWatch, render_soak, write_soak_json
from bookme.logging import configure_logging

# A third of the lifecycle capacity measured on the 2-core machine (`make bench`).
SOAK_RATE = 2.0
# Every kind once (17 at production shape), the rest drawn from the repeatable ones.
FULL_FAULTS = 24
# One fault every this many minutes in a soak, unless --faults says otherwise.
SOAK_FAULT_MINUTES = 4


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=None, help="reproduce a run (default: random)")
    parser.add_argument("--bookings", type=int, default=2000, help="bookings in the workload")
    parser.add_argument(
        "--faults", type=int, default=None, help=f"faults injected (default {FULL_FAULTS})"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=1200.0,
        help="seconds over which bookings and faults start",
    )
    parser.add_argument(
        "--adversary-share",
        type=float,
        default=ChaosConfig.adversary_share,
        help="share of the bookings that are attacks (0 for an honest-only run)",
    )
    parser.add_argument("--concurrency", type=int, default=None, help="client flows at once")
    parser.add_argument("--keep", action="store_true", help="keep the stack's data and logs")
    soak = parser.add_argument_group("soak")
    soak.add_argument("--soak", action="store_true", help="steady traffic for --minutes, watched")
    soak.add_argument("--minutes", type=float, default=60.0, help="the soak's length")
    soak.add_argument("--rate", type=float, default=SOAK_RATE, help="soak bookings a second")
    soak.add_argument("--sample-seconds", type=float, default=60.0, help="soak sampling period")
    return parser.parse_args(argv)


def _config(args: argparse.Namespace, seed: int) -> ChaosConfig:
    if not args.soak:
        return ChaosConfig(
            seed=seed,
            bookings=args.bookings,
            faults=args.faults or FULL_FAULTS,
            duration=args.duration,
            adversary_share=args.adversary_share,
            concurrency=args.concurrency or 40,
            timers=OUTAGE_PROOF_TIMERS,
            create_ahead=OUTAGE_PROOF_AHEAD,
        )
    seconds = args.minutes * 60.0
    return ChaosConfig(
        seed=seed,
        bookings=max(1, round(args.rate * seconds)),
        faults=args.faults or max(12, int(args.minutes // SOAK_FAULT_MINUTES)),
        duration=seconds,
        adversary_share=args.adversary_share,
        # A flow lasts up to a minute under faults: enough slots that the rate holds.
        concurrency=args.concurrency or max(40, round(args.rate * 60)),
        even_faults=True,
        timers=OUTAGE_PROOF_TIMERS,
        create_ahead=OUTAGE_PROOF_AHEAD,
    )


def _command(args: argparse.Namespace, config: ChaosConfig) -> str:
    common = f" --adversary-share {config.adversary_share:g} --faults {config.faults}"
    if args.soak:
        return (
            f"python -m bench.chaos --soak --seed {config.seed} --minutes {args.minutes:g}"
            f" --rate {args.rate:g} --sample-seconds {args.sample_seconds:g}{common}"
        )
    return (
        f"python -m bench.chaos --seed {config.seed} --bookings {config.bookings}"
        f" --duration {config.duration:g}{common}"
    )


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    seed = args.seed if args.seed is not None else secrets.randbelow(10**9)
    console = Console()
    configure_logging("ERROR", False)
    if not 0.0 <= args.adversary_share <= 1.0:
        console.print("--adversary-share must be between 0 and 1")
        return 2
    config = _config(args, seed)
    command = _command(args, config)
    console.print(f"chaos seed {seed}; reproduce with: {command}")
    watch = SoakWatch(every=args.sample_seconds) if args.soak else None
    workdir = Path(tempfile.mkdtemp(prefix=f"bookme-chaos-{seed}-"))
    summary = asyncio.run(
        run_chaos(config, workdir, command, say=console.print, monitor=watch.run if watch else None)
    )
    render(summary, console)
    if watch is None:
        console.print(f"results: {write_json(summary)}")
    else:
        render_soak(watch, console)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = write_soak_json(watch, to_json(summary), RESULTS_DIR / f"soak-{stamp}.json")
        console.print(f"results: {path}")
    ok = passed(summary)
    if ok and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        console.print(f"stack data and logs: {workdir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
