"""`bookme dev`: the whole system on embedded defaults until Ctrl-C / SIGTERM."""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType

import structlog

from bookme.embedded.stack import DevStack, ServiceEndpoints
from bookme.settings import Settings

log = structlog.get_logger(__name__)


def run_dev(settings: Settings) -> int:
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("dev.stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    started = time.monotonic()
    stack = DevStack(settings)
    try:
        endpoints = stack.start()
        _migrate(endpoints)
        summary = _summary(endpoints, time.monotonic() - started)
        print(summary, flush=True)  # noqa: T201 - the one human-facing table
        stop.wait()
    finally:
        stack.stop()
    return 0


def _migrate(endpoints: ServiceEndpoints) -> None:
    from db.migrate import upgrade

    upgrade(endpoints.database_url)
    log.info("dev.migrated", database=_mask(endpoints.database_url))


def _mask(url: str) -> str:
    """A URL without its password, for printing."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"


def _summary(endpoints: ServiceEndpoints, seconds: float) -> str:
    def origin(name: str) -> str:
        return "embedded" if endpoints.embedded.get(name) else "external"

    rows = [
        ("Postgres", _mask(endpoints.database_url), origin("postgres")),
        ("Temporal", endpoints.temporal_address, origin("temporal")),
        ("Temporal UI", endpoints.temporal_ui_url or "(external server's UI)", origin("temporal")),
        ("RPC", ", ".join(_mask(u) for u in endpoints.rpc_urls), origin("anvil")),
        ("Logs", str(endpoints.logs_dir), ""),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"BookMe dev stack ready in {seconds:.1f}s", ""]
    lines += [f"  {name:<{width}}  {where}  {kind}".rstrip() for name, where, kind in rows]
    if endpoints.dev_accounts:
        lines += ["", "  Test wallets (anvil's published keys, LOCAL ONLY, never use elsewhere):"]
        lines += [
            f"    #{i} {acct.address}  {acct.private_key}"
            for i, acct in enumerate(endpoints.dev_accounts[:5])
        ]
    lines += ["", "Ctrl-C stops everything."]
    return "\n".join(lines)
