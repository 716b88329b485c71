"""Heartbeats from a local activity are skipped: the server does not know it, and the SDK logged
an 'UnknownActivity' warning for each one (hundreds per chaos run, from the log search of the
`observe_booking` local activity)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from temporalio.testing import ActivityEnvironment

from activities import heartbeat


async def _slow() -> str:
    await asyncio.sleep(0.05)
    return "done"


def _environment(*, local: bool) -> tuple[ActivityEnvironment, list[object]]:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, is_local=local)
    beats: list[object] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    return env, beats


@pytest.mark.parametrize(("local", "expected"), [(False, True), (True, False)])
async def test_heartbeats_only_from_a_regular_activity(
    monkeypatch: pytest.MonkeyPatch, local: bool, expected: bool
) -> None:
    monkeypatch.setattr(heartbeat, "HEARTBEAT_EVERY_SECONDS", 0.01)
    env, beats = _environment(local=local)
    assert await env.run(heartbeat.heartbeating, _slow()) == "done"
    env.run(heartbeat.beat, "range")
    assert bool(beats) is expected
