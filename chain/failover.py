"""Retry and failover over an ordered list of JSON-RPC providers (the typed calls: chain/client.py).

Providers are tried in configuration order. A provider that fails (connection error,
timeout, HTTP 429/5xx, rate-limit error, stale head, wrong chain) is set aside for a
cool-down and the call moves on to the next one; once the cool-down is over the
preferred provider is tried first again. After a full round of failures the pool
sleeps with exponential backoff and jitter. Node answers (reverts, invalid params) are
not provider failures and are raised to the caller at once.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from chain.errors import (
    AllProvidersFailed,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    StaleHead,
    WrongChain,
)
from chain.hexutil import to_int
from chain.metrics import RpcMetrics
from chain.rpc import Transport, make_transport, mask_url

log = structlog.get_logger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_COOLDOWN_SECONDS = 30.0
DEFAULT_BACKOFF_INITIAL_SECONDS = 0.1
DEFAULT_BACKOFF_MAX_SECONDS = 5.0
_HEAD_METHODS = frozenset({"eth_blockNumber", "eth_getBlockByNumber"})


@dataclass(slots=True)
class _Provider:
    index: int
    label: str
    transport: Transport
    unhealthy_until: float = 0.0
    chain_checked: bool = False
    head: int | None = None
    head_advanced_at: float = 0.0
    last_probe_at: float = -math.inf
    failures: int = field(default=0)


@dataclass(frozen=True, kw_only=True, slots=True)
class ProviderStatus:
    """One provider as the client sees it (for health endpoints and dev summaries)."""

    index: int
    label: str
    serving: bool
    usable: bool
    cooling_down_seconds: float
    consecutive_failures: int
    last_head: int | None


def _error_kind(exc: ProviderError) -> str:
    if isinstance(exc, ProviderTimeout):
        return "timeout"
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, StaleHead):
        return "stale_head"
    if isinstance(exc, WrongChain):
        return "wrong_chain"
    return "unavailable"


def _labels(urls: Sequence[str]) -> list[str]:
    labels: list[str] = []
    for index, url in enumerate(urls):
        label = mask_url(url)
        # Two keys on the same host mask to the same text; keep metric labels distinct.
        labels.append(label if label not in labels else f"{label}#{index}")
    return labels


class ProviderPool:
    """JSON-RPC over ordered providers; `current_provider` tells which one serves."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        registry: CollectorRegistry | None = None,
        expected_chain_id: int | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_attempts: int | None = None,
        backoff_initial: float = DEFAULT_BACKOFF_INITIAL_SECONDS,
        backoff_max: float = DEFAULT_BACKOFF_MAX_SECONDS,
        cooldown_seconds: float = DEFAULT_COOLDOWN_SECONDS,
        head_stale_after_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if not urls:
            raise ValueError("at least one RPC URL is required")
        self._providers = [
            _Provider(
                index=index,
                label=label,
                transport=make_transport(url, label=label),
            )
            for index, (url, label) in enumerate(zip(urls, _labels(urls), strict=True))
        ]
        self._expected_chain_id = expected_chain_id
        self._timeout = timeout
        self._max_attempts = max_attempts or max(3, 2 * len(self._providers))
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._cooldown = cooldown_seconds
        self._stale_after = head_stale_after_seconds
        self._clock = clock
        self._jitter = jitter
        self._serving = 0
        self._metrics = RpcMetrics(registry if registry is not None else CollectorRegistry())
        self._metrics.serving.set(0)

    # --- provider selection and bookkeeping ---

    @property
    def providers(self) -> tuple[str, ...]:
        """Masked labels of the configured providers, in preference order."""
        return tuple(p.label for p in self._providers)

    @property
    def current_provider(self) -> str:
        """Masked label of the provider that answered last (initially the preferred one)."""
        return self._providers[self._serving].label

    @property
    def current_provider_index(self) -> int:
        """Index of the serving provider in the configured list."""
        return self._serving

    def provider_status(self) -> tuple[ProviderStatus, ...]:
        """Each provider's health as of now, in preference order."""
        now = self._clock()
        return tuple(
            ProviderStatus(
                index=p.index,
                label=p.label,
                serving=p.index == self._serving,
                usable=p.unhealthy_until != math.inf,
                cooling_down_seconds=max(0.0, p.unhealthy_until - now)
                if p.unhealthy_until != math.inf
                else math.inf,
                consecutive_failures=p.failures,
                last_head=p.head,
            )
            for p in self._providers
        )

    def _choose(self, tried: set[int]) -> _Provider | None:
        now = self._clock()
        untried = [p for p in self._providers if p.index not in tried]
        if not untried:
            return None
        for provider in untried:
            if provider.unhealthy_until <= now:
                return provider
        # Everything left is cooling down: better to try one than to fail outright.
        usable = [p for p in untried if p.unhealthy_until != math.inf]
        return min(usable, key=lambda p: p.unhealthy_until) if usable else None

    def _mark_failed(self, provider: _Provider, exc: ProviderError, method: str) -> None:
        provider.failures += 1
        if not isinstance(exc, WrongChain):
            provider.unhealthy_until = self._clock() + self._cooldown
        self._metrics.errors.labels(provider.label, _error_kind(exc)).inc()
        log.warning(
            "rpc_provider_failed",
            provider=provider.label,
            provider_index=provider.index,
            method=method,
            kind=_error_kind(exc),
            error=str(exc),
        )

    def _mark_served(self, provider: _Provider, method: str, reason: str | None) -> None:
        provider.failures = 0
        if provider.index == self._serving:
            return
        previous = self._providers[self._serving]
        self._serving = provider.index
        self._metrics.failovers.labels(previous.label, provider.label).inc()
        self._metrics.serving.set(provider.index)
        event = "rpc_provider_restored" if provider.index < previous.index else "rpc_failover"
        log.warning(
            event,
            from_provider=previous.label,
            from_index=previous.index,
            to_provider=provider.label,
            to_index=provider.index,
            method=method,
            reason=reason,
        )

    def _backoff(self, round_number: int) -> float:
        ceiling = min(self._backoff_max, self._backoff_initial * (2.0**round_number))
        # "Equal jitter": at least half the ceiling so retries never bunch at zero.
        return ceiling / 2 + ceiling / 2 * self._jitter()

    async def _send(self, provider: _Provider, method: str, params: list[Any], limit: float) -> Any:
        self._metrics.requests.labels(provider.label, method).inc()
        started = time.perf_counter()
        result = await provider.transport.request(method, params, limit)
        self._metrics.latency.labels(provider.label).observe(time.perf_counter() - started)
        return result

    async def _check_chain(self, provider: _Provider, limit: float) -> None:
        if self._expected_chain_id is None or provider.chain_checked:
            return
        chain_id = to_int(await self._send(provider, "eth_chainId", [], limit))
        if chain_id != self._expected_chain_id:
            provider.unhealthy_until = math.inf
            log.error(
                "rpc_provider_wrong_chain",
                provider=provider.label,
                chain_id=chain_id,
                expected_chain_id=self._expected_chain_id,
            )
            raise WrongChain(
                f"provider serves chain {chain_id}, expected {self._expected_chain_id}",
                provider=provider.label,
                chain_id=chain_id,
            )
        provider.chain_checked = True

    async def _observe_head(self, provider: _Provider, number: int, limit: float) -> None:
        """Record a head; raise StaleHead if it stopped while another provider's moved on."""
        now = self._clock()
        if provider.head is None or number > provider.head:
            provider.head = number
            provider.head_advanced_at = now
            return
        if now - provider.head_advanced_at < self._stale_after or len(self._providers) == 1:
            return
        # An idle chain (anvil without traffic) also has a still head: only another
        # provider being ahead proves this one is stuck. Probe at most once per period.
        if now - provider.last_probe_at < self._stale_after / 2:
            return
        provider.last_probe_at = now
        best = await self._probe_other_heads(provider, limit)
        if best is not None and best > provider.head:
            raise StaleHead(
                f"head stuck at {provider.head} for {now - provider.head_advanced_at:.1f}s "
                f"while another provider is at {best}",
                provider=provider.label,
            )

    async def _probe_other_heads(self, stuck: _Provider, limit: float) -> int | None:
        others = [p for p in self._providers if p is not stuck and p.unhealthy_until != math.inf]

        async def probe(other: _Provider) -> int | None:
            try:
                head = to_int(await self._send(other, "eth_blockNumber", [], limit))
            except ProviderError:
                return None
            if other.head is None or head > other.head:
                other.head = head
                other.head_advanced_at = self._clock()
            return head

        heads = [h for h in await asyncio.gather(*(probe(p) for p in others)) if h is not None]
        return max(heads, default=None)

    # --- the request loop ---

    async def request(
        self, method: str, params: Sequence[Any] = (), *, call_timeout: float | None = None
    ) -> Any:
        """One JSON-RPC call with retry and failover; returns the raw ``result``."""
        per_call = call_timeout if call_timeout is not None else self._timeout
        tried: set[int] = set()
        attempts = 0
        rounds = 0
        last_error: ProviderError | None = None
        reason: str | None = None
        while attempts < self._max_attempts:
            provider = self._choose(tried)
            if provider is None:
                if all(p.unhealthy_until == math.inf for p in self._providers):
                    break
                await asyncio.sleep(self._backoff(rounds))
                rounds += 1
                tried.clear()
                continue
            tried.add(provider.index)
            attempts += 1
            try:
                await self._check_chain(provider, per_call)
                result = await self._send(provider, method, list(params), per_call)
                if (
                    method in _HEAD_METHODS
                    and isinstance(result, dict)
                    and list(params[:1]) == ["latest"]
                ):
                    await self._observe_head(provider, to_int(result["number"]), per_call)
                elif method == "eth_blockNumber":
                    await self._observe_head(provider, to_int(result), per_call)
            except ProviderError as exc:
                last_error = exc
                reason = _error_kind(exc)
                self._mark_failed(provider, exc, method)
                continue
            self._mark_served(provider, method, reason)
            return result
        raise AllProvidersFailed(method, attempts, last_error)

    async def close(self) -> None:
        """Close every transport (HTTP pools, WebSockets)."""
        await asyncio.gather(
            *(p.transport.close() for p in self._providers), return_exceptions=True
        )
