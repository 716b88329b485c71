"""The restore fault: Postgres put back to a backup taken minutes earlier, then the runbook.

At T a dump of the database is taken while the workload runs; at T + ``BACKUP_AGE_SECONDS`` the
processes are stopped (SIGTERM) as the runbook says (listeners first: they would refund, as
orphans, the payments whose rows the restore loses; then the APIs, each taken out of the front
proxy's rotation and its requests answered first, before the workers those requests may need),
the dump is restored, ``bookme migrate`` and ``bookme rebuild`` run as an operator would run
them, and the processes start again (workers, listeners, then the APIs, each put back in
rotation once it answers). The chaos checks then judge what the run ended with.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TYPE_CHECKING

import structlog

from bench.chaos.stack import APIS, LISTENERS, WORKERS, ChaosStack
from bookme.ops.rebuild_backup import dump, restore

if TYPE_CHECKING:
    from bench.chaos.faults import FaultInjector, PlannedFault

log = structlog.get_logger(__name__)

# How old the backup is when it is restored: minutes of workload the restore takes away.
BACKUP_AGE_SECONDS = 60.0
COMMAND_TIMEOUT_SECONDS = 300.0


async def _bookme(stack: ChaosStack, *args: str) -> tuple[int, str]:
    """``python -m bookme <args>`` with the apps' settings; exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bookme",
        *args,
        env=stack.app_env(stack.node.http_url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), COMMAND_TIMEOUT_SECONDS)
    return await process.wait(), output.decode(errors="replace")


async def _stop(stack: ChaosStack, app: str) -> None:
    """Stopped as an operator stops it (SIGTERM: an API replica finishes the requests it holds,
    which kill -9 would turn into 502s), held down until `revive`. ChaosStack only kills, so
    this marks the app held down itself."""
    stack._held_down.add(app)
    await asyncio.to_thread(stack._apps[app].stop)


async def _stop_api(stack: ChaosStack, api: str) -> None:
    """Out of the front proxy's rotation, its requests answered, then stopped (its event
    streams end on SIGTERM; their clients reconnect to the proxy)."""
    held = await stack.front.drain(stack.api_ports[api])
    if held:
        log.warning("chaos.restore_api_still_busy", api=api, requests=held)
    await _stop(stack, api)


async def _revive_apis(stack: ChaosStack) -> None:
    """Started again, each back in rotation once it answers on its own port."""
    for api in APIS:
        stack.revive(api)
    for api in APIS:
        if not await stack.wait_api(api):
            log.warning("chaos.restore_api_not_answering", api=api)
        stack.front.undrain(stack.api_ports[api])


async def restore_from_backup(injector: FaultInjector, fault: PlannedFault) -> str:
    """Back up now, restore the backup ``BACKUP_AGE_SECONDS`` later, follow the runbook.

    A command that fails fails the fault (its window reports it), after the apps are back."""
    stack = injector.stack
    backup = stack.workdir / f"restore-{int(fault.at)}.dump"
    operator = stack.roles.operator.address
    # What the chain had mined of the operator's before the dump began: the ledger rows of
    # these are in the backup; later ones may not be.
    mined_before = await injector.chain.get_transaction_count(operator, "latest")
    await asyncio.to_thread(dump, stack.database_url, backup)
    taken = time.monotonic()
    await asyncio.sleep(BACKUP_AGE_SECONDS)
    # Listeners first; the APIs before the workers their requests may need.
    for app in LISTENERS:
        await _stop(stack, app)
    for api in APIS:
        await _stop_api(stack, api)
    for app in WORKERS:
        await _stop(stack, app)
    sent_before_restore = await injector.chain.get_transaction_count(operator, "pending")
    injector.forgotten_operator_nonces.append(range(mined_before, sent_before_restore))
    await asyncio.to_thread(restore, stack.database_url, backup)
    age = time.monotonic() - taken
    failed: list[str] = []
    summary = ""
    for command in (("migrate",), ("rebuild",)):
        code, output = await _bookme(stack, *command)
        if code != 0:
            failed.append(f"bookme {' '.join(command)} exited {code}: {output.strip()[-500:]}")
        summary = next((ln for ln in output.splitlines() if ln.startswith("rows")), summary)
    # Workers first, so the listeners' re-scan finds the workflows' activities running.
    for app in (*WORKERS, *LISTENERS):
        stack.revive(app)
    await _revive_apis(stack)
    if failed:
        raise RuntimeError("; ".join(failed))
    return f"backup {age:.0f}s old restored; rebuild: {summary}"
