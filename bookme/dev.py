"""`bookme dev`: the whole system on embedded defaults until Ctrl-C / SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
from dataclasses import dataclass
from types import FrameType

import structlog

from bookme.devchain import DevRoles, ensure_deployed
from bookme.embedded.apps import AppProcesses, app_specs
from bookme.embedded.logtail import LogTail
from bookme.embedded.process import port_open
from bookme.embedded.stack import DevStack, ServiceEndpoints
from bookme.settings import Settings
from chain.client import ChainClient
from chain.deploy import Deployment, fee_policy_from_settings, verify_deployment
from chain.errors import DeploymentMismatch

log = structlog.get_logger(__name__)


@dataclass(frozen=True, kw_only=True)
class ChainSetup:
    deployment: Deployment
    roles: DevRoles | None
    freshly_deployed: bool


def run_dev(settings: Settings) -> int:
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("dev.stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    taken = ports_in_use(settings)
    if taken:
        print(  # noqa: T201 - the CLI's error line
            f"bookme dev: already in use: {', '.join(taken)}. Another `make dev` (this or "
            "another checkout) or another program listens there: stop it, or set the "
            "variable(s) named to free ports.",
            file=sys.stderr,
        )
        return 2
    started = time.monotonic()
    stack = DevStack(settings)
    apps: AppProcesses | None = None
    tail: LogTail | None = None
    try:
        endpoints = stack.start()
        _migrate(endpoints)
        chain = asyncio.run(_chain_setup(settings, endpoints))
        apps = AppProcesses(_app_env(settings, endpoints, chain), endpoints.logs_dir)
        specs = app_specs(settings.api_host, settings.api_port)
        apps.start(specs)
        summary = _summary(settings, endpoints, chain, time.monotonic() - started)
        print(summary, flush=True)  # noqa: T201 - the one human-facing table
        tail = LogTail(apps.log_files(specs))
        tail.start()
        while not stop.wait(1.0):
            crashed = apps.crashed()
            if crashed:
                log.error("dev.app_crashed", apps=crashed, logs=str(endpoints.logs_dir))
                return 1
    finally:
        if tail:
            tail.stop()
        if apps:
            apps.stop()
        stack.stop()
    return 0


def ports_in_use(settings: Settings) -> list[str]:
    """The local ports this run would listen on that something already holds, each named."""
    wanted = [("API", "BOOKME_API_PORT", settings.api_port)]
    for name, var, port in (
        ("worker metrics", "BOOKME_WORKER_METRICS_PORT", settings.worker_metrics_port),
        ("listener metrics", "BOOKME_LISTENER_METRICS_PORT", settings.listener_metrics_port),
    ):
        if port:
            wanted.append((name, var, port))
    if not settings.database_url:
        wanted.append(("Postgres", "BOOKME_DEV_POSTGRES_PORT", settings.dev_postgres_port))
    if not settings.temporal_address:
        wanted.append(("Temporal", "BOOKME_DEV_TEMPORAL_PORT", settings.dev_temporal_port))
        wanted.append(("Temporal UI", "BOOKME_DEV_TEMPORAL_UI_PORT", settings.dev_temporal_ui_port))
    if not settings.rpc_urls:
        wanted.append(("anvil", "BOOKME_DEV_ANVIL_PORT", settings.dev_anvil_port))
    return [f"{port} ({name}, {var})" for name, var, port in wanted if port_open("127.0.0.1", port)]


def _migrate(endpoints: ServiceEndpoints) -> None:
    from db.migrate import upgrade

    upgrade(endpoints.database_url)
    log.info("dev.migrated", database=mask_url(endpoints.database_url))


async def _chain_setup(settings: Settings, endpoints: ServiceEndpoints) -> ChainSetup:
    client = ChainClient(list(endpoints.rpc_urls), expected_chain_id=settings.chain_id)
    try:
        if endpoints.embedded["anvil"]:
            roles = DevRoles.from_accounts(endpoints.dev_accounts)
            deployment, fresh = await ensure_deployed(
                client,
                roles,
                settings.deployment_file,
                fee_policy_from_settings(settings),
                owner_delay_seconds=settings.owner_timelock_delay_seconds,
            )
            return ChainSetup(deployment=deployment, roles=roles, freshly_deployed=fresh)
        if not settings.deployment_file.exists():
            raise SystemExit(
                f"BOOKME_RPC_URLS points at an external chain but {settings.deployment_file} "
                "does not exist: run `bookme deploy` against it first"
            )
        deployment = Deployment.read_json(settings.deployment_file)
        try:
            await verify_deployment(
                client,
                chain_id=deployment.chain_id,
                escrow_address=deployment.escrow,
                usdc_address=deployment.usdc,
                fee_policy=fee_policy_from_settings(settings),
            )
        except DeploymentMismatch as exc:
            # Checked here, not left to the apps: they would start and fail only on a booking.
            raise SystemExit(
                f"bookme dev: stale deployment file {settings.deployment_file}: {exc}. "
                "Run `bookme deploy` against BOOKME_RPC_URLS, or set BOOKME_DEPLOYMENT_FILE "
                "to this chain's deployment."
            ) from exc
        return ChainSetup(deployment=deployment, roles=None, freshly_deployed=False)
    finally:
        await client.close()


def _app_env(settings: Settings, endpoints: ServiceEndpoints, chain: ChainSetup) -> dict[str, str]:
    env = {
        "BOOKME_DATABASE_URL": endpoints.database_url,
        "BOOKME_TEMPORAL_ADDRESS": endpoints.temporal_address,
        "BOOKME_RPC_URLS": ",".join(endpoints.rpc_urls),
        "BOOKME_CHAIN_ID": str(chain.deployment.chain_id),
        "BOOKME_ESCROW_ADDRESS": chain.deployment.escrow,
        "BOOKME_USDC_ADDRESS": chain.deployment.usdc,
        "BOOKME_DEPLOYMENT_FILE": str(settings.deployment_file.resolve()),
        # `python -m api` reads these: the port we checked is the one it binds.
        "BOOKME_API_HOST": settings.api_host,
        "BOOKME_API_PORT": str(settings.api_port),
    }
    if chain.roles is not None:
        # anvil's published keys: local only (production refuses them by settings validation).
        env["BOOKME_SIGNER_PRIVATE_KEY"] = chain.roles.signer.private_key
        env["BOOKME_OPERATOR_PRIVATE_KEY"] = chain.roles.operator.private_key
    return env


def mask_url(url: str) -> str:
    """A URL without its password, for printing."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"


def _metrics_urls(settings: Settings) -> str:
    """Where Prometheus scrapes this stack (the API's /metrics, the worker's, the listener's)."""
    host = settings.metrics_host
    urls = [f"http://{settings.api_host}:{settings.api_port}/metrics"]
    urls += [
        f"http://{host}:{port}/metrics"
        for port in (settings.worker_metrics_port, settings.listener_metrics_port)
        if port
    ]
    return ", ".join(urls)


def _summary(
    settings: Settings, endpoints: ServiceEndpoints, chain: ChainSetup, seconds: float
) -> str:
    def origin(name: str) -> str:
        return "embedded" if endpoints.embedded.get(name) else "external"

    api = f"http://{settings.api_host}:{settings.api_port}"
    rows = [
        ("API docs", f"{api}/docs", ""),
        ("Health", f"{api}/health", ""),
        ("Metrics", _metrics_urls(settings), ""),
        (
            "Temporal UI",
            endpoints.temporal_ui_url or "(the external server's UI)",
            origin("temporal"),
        ),
        ("Temporal", endpoints.temporal_address, origin("temporal")),
        ("Postgres", mask_url(endpoints.database_url), origin("postgres")),
        ("RPC", ", ".join(mask_url(u) for u in endpoints.rpc_urls), origin("anvil")),
        ("Escrow", chain.deployment.escrow, "deployed now" if chain.freshly_deployed else ""),
        ("USDC", chain.deployment.usdc, "MockUSDC" if chain.deployment.mock_usdc else ""),
        ("Logs", str(endpoints.logs_dir), ""),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"BookMe dev stack ready in {seconds:.1f}s", ""]
    lines += [f"  {name:<{width}}  {where}  {kind}".rstrip() for name, where, kind in rows]
    if chain.roles is not None:
        roles = chain.roles
        lines += [
            "",
            "  Local wallets (anvil's published keys: LOCAL ONLY, never use them elsewhere):",
        ]
        for label, acct in (
            ("signer", roles.signer),
            ("operator", roles.operator),
            ("treasury", roles.treasury),
        ):
            lines.append(f"    {label:<9} {acct.address}")
        for i, acct in enumerate(roles.wallets[:4]):
            lines.append(f"    wallet#{i}  {acct.address}  key {acct.private_key}  10,000 USDC")
    lines += ["", "Ctrl-C stops everything."]
    return "\n".join(lines)
