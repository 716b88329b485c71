"""`bookme demo`: six real bookings through the public API and real wallets, checked to the unit.

1. paid, then completed by the workflow's auto-complete timer (chain time moved past release)
2. paid, then completed by the customer's wallet (``completeService``)
3. paid, then cancelled late by the customer: a signed split refund sent from their wallet
4. never paid: cancelled by the payment deadline
5. an orphan payment (a booking id the backend never issued), refunded by the operator
6. paid with one signature from a wallet holding USDC and no ETH (the platform relays it and
   pays the gas), then auto-completed; its ETH balance is printed, 0 before and after

Fresh random customer/provider/inviter wallets each run, so their balances move only by what
these bookings did. Runs against ``make dev`` when its timers are short enough, else starts a
private ``bookme dev`` with short timers and stops it at the end.

Modules: `target` (which stack), `api_client` (the HTTP API), `wallets` (the chain side),
`scenarios` (the six flows), `relayed` (paying with one signature), `expected` (balances), `render` (what is printed).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType
from typing import TextIO

from bookme.demo.scenarios import drive
from bookme.demo.target import Target, drive_chosen_stack
from bookme.demo.wallets import (
    booking_authorization_from_api,
    cancellation_authorization_from_api,
)
from bookme.settings import Settings

__all__ = ["booking_authorization_from_api", "cancellation_authorization_from_api", "run_demo"]


def run_demo(settings: Settings, *, stack: str, keep: bool, out: TextIO) -> int:
    """`bookme demo`: pick the stack (running or private), drive it, always clean up."""
    # The progress lines are the output; per-transaction info logs would drown them.
    root = logging.getLogger()
    root.setLevel(max(logging.WARNING, root.level))
    # SIGTERM unwinds like Ctrl-C, so a private stack is stopped either way.
    signal.signal(signal.SIGTERM, _interrupt)

    def drive_on(target: Target) -> int:
        return asyncio.run(drive(target, settings, out))

    try:
        return drive_chosen_stack(settings, stack=stack, keep=keep, out=out, drive=drive_on)
    except KeyboardInterrupt:
        out.write("Demo interrupted.\n")
        return 130


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)
