"""The one way every process (API, worker, listener, CLI) connects to Temporal from its settings.

Plain gRPC to `make dev`'s server by default; TLS (a private CA, mTLS client certificate, a
server name override) and an API key (Temporal Cloud) from ``BOOKME_TEMPORAL_*``. When
``BOOKME_TEMPORAL_PROFILE`` names a profile, Temporal's own client configuration is read first
(`temporalio.envconfig`: the TOML file at ``TEMPORAL_CONFIG_FILE`` or the CLI's default path,
and the ``TEMPORAL_*`` variables) and every ``BOOKME_TEMPORAL_*`` value that is set wins over it.
Without a profile nothing outside the ``BOOKME_`` settings is read, so a developer's CLI profile
never redirects the tests. The API key never reaches a log line or an error.

Long-running processes (worker, listener) start with `wait_for_temporal`: a server that does not
answer yet (refused, timed out, name not resolved) is waited for with capped backoff, as a
supervisor would otherwise restart them in a loop; a configuration error still fails at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from prometheus_client import CollectorRegistry, Gauge
from pydantic import SecretStr
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.envconfig import ClientConfigProfile
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from bookme.endpoints import temporal_address
from bookme.settings import Settings, SettingsError

if TYPE_CHECKING:
    from temporalio.converter import DataConverter


log = structlog.get_logger(__name__)
_T = TypeVar("_T")


class TemporalUnreachable(SettingsError):
    """Connecting failed; the message is one line naming the address and the likely cause."""

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class TemporalNotAnswering(TemporalUnreachable):
    """Nothing answered at the address (refused, timed out, not resolved): worth waiting for.

    Not raised for an answer that refuses us (certificate, API key, a server closing plaintext):
    waiting would not change it.
    """


# Marks of the bridge's errors where no server answered. A name that does not resolve is one:
# Compose's and Kubernetes' DNS only know a service once its container runs.
_NOT_ANSWERING = ("tcp connect error", "dns error", "timeout expired", "code: unavailable")


def not_answering(bridge_error: str) -> bool:
    """Whether a `Client.connect` failure means no server answered (rather than one refusing)."""
    lowered = bridge_error.lower()
    return any(mark in lowered for mark in _NOT_ANSWERING)


@dataclass(frozen=True)
class ConnectBackoff:
    """Seconds before the next attempt: doubling from `first`, never above `cap`."""

    first: float = 0.5
    cap: float = 10.0

    def delay(self, attempt: int) -> float:
        """After the `attempt`-th failure (1-based)."""
        return min(self.cap, self.first * 2.0 ** min(attempt - 1, 32))


@dataclass(frozen=True, kw_only=True)
class TemporalConnection:
    """Where and how to connect: what `Client.connect` is given, the API key kept secret."""

    address: str
    namespace: str
    tls: TLSConfig | bool = False
    api_key: SecretStr | None = None
    rpc_metadata: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """For logs and errors: address, namespace and transport, never the key."""
        transport = "TLS" if self.tls else "plaintext"
        if isinstance(self.tls, TLSConfig) and self.tls.client_cert:
            transport = "mTLS"
        key = ", API key" if self.api_key is not None else ""
        return f"{self.address} (namespace {self.namespace}, {transport}{key})"


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"cannot read the Temporal {what} {path}: {exc.strerror}") from None


def _tls_from_settings(settings: Settings) -> TLSConfig | None:
    """Our TLS settings, or None when none is set (TLS then follows the profile, else off)."""
    ca = _read(settings.temporal_tls_ca_file, "CA file (BOOKME_TEMPORAL_TLS_CA_FILE)")
    cert = _read(
        settings.temporal_tls_cert_file, "client certificate (BOOKME_TEMPORAL_TLS_CERT_FILE)"
    )
    key = _read(settings.temporal_tls_key_file, "client key (BOOKME_TEMPORAL_TLS_KEY_FILE)")
    if (cert is None) != (key is None):
        raise SettingsError(
            "BOOKME_TEMPORAL_TLS_CERT_FILE and BOOKME_TEMPORAL_TLS_KEY_FILE go together (mTLS)"
        )
    name = settings.temporal_tls_server_name or None
    if not settings.temporal_tls and not any((ca, cert, name, settings.temporal_api_key)):
        return None
    return TLSConfig(server_root_ca_cert=ca, domain=name, client_cert=cert, client_private_key=key)


def _profile(settings: Settings) -> dict[str, Any]:
    if not settings.temporal_profile:
        return {}
    try:
        profile = ClientConfigProfile.load(profile=settings.temporal_profile)
    except Exception as exc:  # the bridge raises plain RuntimeError/ValueError
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise SettingsError(
            f"cannot load Temporal profile {settings.temporal_profile!r}: {first}"
        ) from None
    return dict(profile.to_client_connect_config())


def temporal_connection(settings: Settings) -> TemporalConnection:
    """How this process reaches Temporal: BOOKME_ settings over the profile over `make dev`."""
    profile = _profile(settings)
    address = settings.temporal_address or profile.get("target_host") or temporal_address(settings)
    namespace = settings.temporal_namespace
    if "temporal_namespace" not in settings.model_fields_set:
        namespace = profile.get("namespace") or namespace
    api_key = settings.temporal_api_key
    if api_key is None and profile.get("api_key"):
        api_key = SecretStr(profile["api_key"])
    tls: TLSConfig | bool = _tls_from_settings(settings) or profile.get("tls", False)
    if api_key is not None and tls is False and "tls" not in profile:
        tls = True  # an API key over plaintext would hand it to anyone on the path
    return TemporalConnection(
        address=address,
        namespace=namespace,
        tls=tls,
        api_key=api_key,
        rpc_metadata=dict(profile.get("rpc_metadata") or {}),
    )


def _hint(reason: str, connection: TemporalConnection) -> str:
    lowered = reason.lower()
    if "certificate" in lowered or "unknownissuer" in lowered:
        return " (the server's certificate is not trusted: set BOOKME_TEMPORAL_TLS_CA_FILE)"
    closed = any(
        word in lowered for word in ("connection reset", "connectionreset", "broken pipe", "closed")
    )
    if not connection.tls and closed:
        return " (does the server expect TLS? set BOOKME_TEMPORAL_TLS=true)"
    mutual = isinstance(connection.tls, TLSConfig) and connection.tls.client_cert
    if connection.tls and not mutual and closed:
        return (
            " (does the server require a client certificate? set BOOKME_TEMPORAL_TLS_CERT_FILE"
            " and BOOKME_TEMPORAL_TLS_KEY_FILE)"
        )
    return ""


async def connect_temporal(
    settings: Settings,
    *,
    data_converter: DataConverter | None = None,
    lazy: bool = False,
) -> Client:
    """A client for this process's Temporal; `TemporalUnreachable` (one line) when it fails."""
    connection = temporal_connection(settings)
    extra: dict[str, Any] = {}
    if data_converter is not None:
        extra["data_converter"] = data_converter
    try:
        return await Client.connect(
            connection.address,
            namespace=connection.namespace,
            tls=connection.tls,
            api_key=connection.api_key.get_secret_value() if connection.api_key else None,
            rpc_metadata=connection.rpc_metadata,
            lazy=lazy,
            **extra,
        )
    except RuntimeError as exc:
        text = str(exc)
        if connection.api_key is not None:
            text = text.replace(connection.api_key.get_secret_value(), "***")
        # The bridge's message nests causes; its last line names the root one.
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        reason = " / ".join(lines[:1] + lines[-1:]) if len(lines) > 1 else (lines or [""])[0]
        reason = f"{reason or type(exc).__name__}{_hint(text, connection)}"
        error = TemporalNotAnswering if not_answering(text) else TemporalUnreachable
        raise error(
            f"cannot connect to Temporal at {connection.describe()}: {reason}", reason=reason
        ) from None


async def wait_for_temporal(
    settings: Settings,
    stop: asyncio.Event,
    *,
    data_converter: DataConverter | None = None,
    registry: CollectorRegistry | None = None,
    backoff: ConnectBackoff = ConnectBackoff(),
) -> Client | None:
    """`connect_temporal`, waiting while no server answers; None once `stop` is set first.

    Gives up (raising the last `TemporalNotAnswering`) after BOOKME_TEMPORAL_CONNECT_WAIT_SECONDS
    when that is set. While waiting, `bookme_temporal_waiting` is 1 on `registry`.
    """
    connection = temporal_connection(settings)
    waiting = Gauge(
        "bookme_temporal_waiting",
        "1 while this process waits at startup for Temporal to answer, else 0.",
        registry=registry or CollectorRegistry(),
    )
    limit = settings.temporal_connect_wait_seconds
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            client = await _unless_stopped(
                connect_temporal(settings, data_converter=data_converter), stop
            )
        except TemporalNotAnswering as exc:
            delay = backoff.delay(attempt)
            waited = time.monotonic() - started
            if limit and waited + delay > limit:
                raise
            waiting.set(1)
            log.warning(
                "temporal_unreachable",
                attempt=attempt,
                retry_in_seconds=delay,
                waited_seconds=round(waited, 1),
                temporal=connection.describe(),
                error=exc.reason,
            )
            if await _stopped_within(stop, delay):
                return None
            continue
        waiting.set(0)
        if client is None:
            return None
        if attempt > 1:
            log.info("temporal_reachable", attempts=attempt, temporal=connection.describe())
        await _check_namespace(client, connection)
        return client


async def _check_namespace(client: Client, connection: TemporalConnection) -> None:
    """A namespace the server does not know is a configuration error: one line, not a traceback
    from whichever call first needs it (connecting does not check it)."""
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=connection.namespace)
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise SettingsError(
                f"Temporal at {connection.describe()} has no namespace {connection.namespace!r}"
                " (set BOOKME_TEMPORAL_NAMESPACE)"
            ) from None
        # Anything else (a key not allowed to describe it) is left to the calls that follow.


async def _unless_stopped(work: Coroutine[Any, Any, _T], stop: asyncio.Event) -> _T | None:
    """`work`'s result, or None when `stop` is set first (a connect can hang for 30 s)."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if task.done():
        return task.result()
    task.cancel()
    return None


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
