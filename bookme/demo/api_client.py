"""The demo's HTTP client of the public API: bearer tokens, calls, and a watch of all bookings."""

from __future__ import annotations

import asyncio
import secrets
import warnings
from datetime import datetime
from typing import Any

import httpx
from jwt.warnings import InsecureKeyLengthWarning

from api.auth import mint_token
from api.money import format_units
from bookme.demo.errors import DemoFailure
from bookme.demo.render import Progress
from bookme.demo.runs import FINAL, Run
from bookme.settings import Settings

# One listing call for all bookings every 2 s stays well inside the API's per-user limit
# (60 requests a minute by default) beside the demo's other calls.
WATCH_SECONDS = 2.0


def bearer(settings: Settings, sub: str, role: str, wallet: str | None = None) -> dict[str, str]:
    """An Authorization header with a token minted from this checkout's (dev) JWT settings."""
    with warnings.catch_warnings():
        # The published dev secret is short on purpose; production refuses it anyway.
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        token = mint_token(
            settings.jwt_secret.get_secret_value(),
            sub=sub,
            role=role,
            wallet=wallet,
            algorithm=settings.jwt_algorithm,
            audience=settings.jwt_audience or None,
            issuer=settings.jwt_issuer or None,
        )
    return {"Authorization": f"Bearer {token}"}


class DemoApi:
    """The API as the demo's customer sees it, plus the marketplace that creates bookings."""

    def __init__(
        self,
        api: httpx.AsyncClient,
        settings: Settings,
        *,
        customer_wallet: str,
        gasless_wallet: str,
        progress: Progress,
    ) -> None:
        self.api = api
        self.progress = progress
        self.customer_wallet = customer_wallet
        run_tag = secrets.token_hex(3)
        self.customer_id = f"demo-customer-{run_tag}"
        self.provider_id = f"demo-provider-{run_tag}"
        self.as_customer = bearer(settings, self.customer_id, "customer", customer_wallet)
        # Booking 6's customer, who holds no ETH (a user of its own).
        self.gasless_id = f"demo-gasless-{run_tag}"
        self.as_gasless = bearer(settings, self.gasless_id, "customer", gasless_wallet)
        # The marketplace's server credential: it decides each booking's price and parties.
        self.as_marketplace = bearer(settings, "demo-marketplace", "service")

    async def call(
        self,
        method: str,
        path: str,
        expect: int,
        *,
        as_marketplace: bool = False,
        as_gasless: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One request (as the customer unless said otherwise); any other status fails the step."""
        headers = self.as_marketplace if as_marketplace else self.as_customer
        headers = self.as_gasless if as_gasless else headers
        response = await self.api.request(method, path, headers=headers, **kwargs)
        if response.status_code != expect:
            raise DemoFailure(f"{method} {path}: HTTP {response.status_code} {response.text[:300]}")
        body: dict[str, Any] = response.json()
        return body

    async def create(
        self, run: Run, scheduled_at: datetime, *, customer: str, provider: str, inviter: str | None
    ) -> dict[str, Any]:
        """The marketplace creates the run's booking between these wallets."""
        gasless = customer != self.customer_wallet
        body: dict[str, Any] = {
            "service_id": f"demo-{run.key}",
            "provider_id": self.provider_id,
            "customer_id": self.gasless_id if gasless else self.customer_id,
            "customer_wallet": customer,
            "provider_wallet": provider,
            "amount": format_units(run.amount),
            "scheduled_at": scheduled_at.replace(microsecond=0).isoformat(),
        }
        if inviter is not None:
            body["inviter_wallet"] = inviter
        booking = await self.call("POST", "/bookings", 201, json=body, as_marketplace=True)
        run.booking_id = str(booking["id"])
        run.workflow_id = booking["workflow_id"] or f"booking-{run.booking_id}"
        run.moved_to(booking["status"])
        self.progress.say(run.key, f"created {run.booking_id}: {booking['status']}")
        return booking

    async def detail(self, run: Run) -> dict[str, Any]:
        return await self.call("GET", f"/bookings/{run.booking_id}", 200)

    async def events(self, run: Run) -> list[dict[str, Any]]:
        """The booking's audit trail, oldest first."""
        page = await self.call("GET", f"/bookings/{run.booking_id}/events", 200)
        items: list[dict[str, Any]] = page["items"]
        return items

    async def report(self, run: Run, tx_hash: str, kind: str) -> None:
        """The customer tells the backend about a transaction their wallet sent."""
        await self.call(
            "POST",
            f"/bookings/{run.booking_id}/transactions",
            202,
            json={"tx_hash": tx_hash, "kind": kind},
        )

    async def cancel(self, run: Run, reason: str) -> dict[str, Any]:
        return await self.call(
            "POST", f"/bookings/{run.booking_id}/cancellation", 200, json={"reason": reason}
        )

    async def watch(self, runs: list[Run], stop: asyncio.Event) -> None:
        """Print each status change of the bookings until all are final or the demo ends."""
        while not stop.is_set():
            try:
                # The customer's own bookings (a fresh customer each run: only these).
                page = await self.call("GET", "/bookings", 200, params={"limit": 100})
            except (httpx.HTTPError, DemoFailure) as exc:
                # One failed read must not end the display; the step's own deadline bounds it.
                self.progress.say("watch", f"(status read failed, retrying: {exc})")
                await asyncio.sleep(WATCH_SECONDS)
                continue
            rows = {row["id"]: row for row in page["items"]}
            for run in runs:
                row = rows.get(run.booking_id or "")
                if row is not None and run.status not in FINAL:
                    self.seen(run, row)
            if all(run.status in FINAL for run in runs):
                return
            await asyncio.sleep(WATCH_SECONDS)

    def seen(self, run: Run, row: dict[str, Any]) -> None:
        """Record what one read of the booking's row shows."""
        if row["status"] != run.status:
            self.progress.say(run.key, f"{run.status} -> {row['status']}")
            run.moved_to(row["status"])
        for name, column in (
            ("completion", "completion_tx_hash"),
            ("cancellation", "cancellation_tx_hash"),
        ):
            if row.get(column) and name not in run.txs:
                run.txs[name] = row[column]
