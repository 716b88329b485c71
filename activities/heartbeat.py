"""Heartbeating while an activity waits on the chain, so a dead worker is noticed in time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from temporalio import activity

T = TypeVar("T")
HEARTBEAT_EVERY_SECONDS = 5.0


async def heartbeating(call: Awaitable[T]) -> T:
    """Await ``call``, heartbeating every few seconds until it is done.

    When the activity is cancelled (its worker shutting down, a heartbeat timeout), ``call`` is
    cancelled with it; the retry, on any worker, resumes from what the ledger recorded.
    """
    task = asyncio.ensure_future(call)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY_SECONDS)
            if done:
                return task.result()
            beat()
    finally:
        task.cancel()


def beat(*details: object) -> None:
    """Heartbeat, unless this is a local activity: the server knows nothing of those, and the
    SDK answers each beat with an 'UnknownActivity' warning in the worker's log (seen by the
    hundred in a chaos run). A local activity's timeout is its schedule-to-close."""
    if not activity.info().is_local:
        activity.heartbeat(*details)
