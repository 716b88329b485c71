"""Wake-ups for new heads: a WebSocket newHeads subscription, with polling as the floor.

The sync loop polls on its own interval regardless, so a dead or silent subscription costs
latency, never events. After any drop the subscription is re-opened (web3-style reconnects
do not restore subscriptions) and a wake-up makes the loop backfill the gap from its
checkpoint. A subscription that stays silent while polling sees the head move is stale and
is re-opened too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from chain.client import ChainClient
from chain.errors import AllProvidersFailed, ChainError
from chain.hexutil import to_int
from chain.rpc import Subscription
from listener.metrics import ListenerMetrics

log = structlog.get_logger(__name__)

RESUBSCRIBE_INITIAL_SECONDS = 0.2
RESUBSCRIBE_MAX_SECONDS = 10.0
# With no WebSocket provider configured, look again now and then (cheap, keeps logs quiet).
NO_WEBSOCKET_RETRY_SECONDS = 60.0


class HeadWatcher:
    """Sets `wake` on every new head; `polled(head)` lets the sync loop report what it saw."""

    def __init__(
        self,
        client: ChainClient,
        metrics: ListenerMetrics,
        *,
        stale_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._metrics = metrics
        self._stale_after = stale_after
        self._clock = clock
        self.wake = asyncio.Event()
        self.notified_head = -1
        self._polled_head = -1
        self._last_notice = clock()

    def polled(self, head: int) -> None:
        """The sync loop saw `head` by polling."""
        self._polled_head = max(self._polled_head, head)

    def _stale(self) -> bool:
        silent_for = self._clock() - self._last_notice
        return silent_for >= self._stale_after and self._polled_head > self.notified_head

    async def run(self) -> None:
        """Keep a newHeads subscription open until cancelled."""
        backoff = RESUBSCRIBE_INITIAL_SECONDS
        while True:
            try:
                subscription = await self._client.subscribe("newHeads")
            except AllProvidersFailed as exc:
                outcome = "no_websocket" if exc.last_error is None else "unavailable"
                self._metrics.subscriptions.labels(outcome).inc()
                if exc.last_error is None:
                    await asyncio.sleep(NO_WEBSOCKET_RETRY_SECONDS)
                    continue
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RESUBSCRIBE_MAX_SECONDS)
                continue
            self._metrics.subscriptions.labels("opened").inc()
            log.info("listener_subscribed", provider=subscription.provider)
            self._last_notice = self._clock()
            # Anything may have been missed while unsubscribed: make the loop look now.
            self.wake.set()
            outcome = await self._follow(subscription)
            self._metrics.subscriptions.labels(outcome).inc()
            log.warning("listener_subscription_ended", provider=subscription.provider, why=outcome)
            if outcome == "dropped":
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RESUBSCRIBE_MAX_SECONDS)
            else:
                backoff = RESUBSCRIBE_INITIAL_SECONDS

    async def _follow(self, subscription: Subscription) -> str:
        reader = asyncio.create_task(self._read(subscription))
        try:
            while True:
                done, _ = await asyncio.wait({reader}, timeout=self._stale_after / 4)
                if reader in done:
                    return reader.result()
                if self._stale():
                    return "stale"
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await subscription.close()

    async def _read(self, subscription: Subscription) -> str:
        try:
            async for header in subscription:
                self._last_notice = self._clock()
                try:
                    self.notified_head = max(self.notified_head, to_int(header["number"]))
                except (KeyError, TypeError, ValueError):
                    continue
                self.wake.set()
        except ChainError:
            return "dropped"
        return "closed"
