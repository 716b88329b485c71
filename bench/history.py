"""History events per booking path (issue 17): Temporal's CPU follows them.

Each path runs through the bench's own API, listener and worker, against a second API whose
bookings settle after a one-second finality period and lapse after a three-second payment
deadline, so every history is counted to its close.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from bench.results import Report
from bench.stack import BenchStack
from bench.traffic import BookingTraffic, Lifecycle
from bookme.demo import cancellation_authorization_from_api
from workflows import booking_workflow_id

# Issue 17's goal for the happy path (it was 72-75 when the issue was filed).
GOAL_HAPPY_EVENTS = 40
SHORT_POLICY = {
    "BOOKME_SETTLEMENT_FINALITY_SECONDS": "1",
    "BOOKME_PAYMENT_DEADLINE_SECONDS": "3",
}
CLOSE_WITHIN = 60.0


@dataclass(frozen=True, kw_only=True)
class PathHistories:
    """Events in one closed history of each path."""

    happy: int
    late_cancellation: int
    payment_deadline: int

    def rows(self) -> list[tuple[str, int]]:
        return [
            ("happy (pay, customer completes)", self.happy),
            ("late cancellation (pay, customer cancels)", self.late_cancellation),
            ("payment deadline (never paid)", self.payment_deadline),
        ]


async def path_histories(stack: BenchStack, engine: AsyncEngine, client: Client) -> PathHistories:
    url = await stack.start_api("api-history", SHORT_POLICY)
    traffic = BookingTraffic(stack, engine, api_url=url)
    traffic.watcher.start()  # the wallets approved the escrow when the run began
    try:
        happy = await traffic.lifecycle()
        cancelled = await _late_cancellation(traffic)
        lapsed = Lifecycle()
        await traffic.create(traffic.customer(), lapsed)
        return PathHistories(
            happy=await closed_history_events(client, happy.booking_id),
            late_cancellation=await closed_history_events(client, cancelled.booking_id),
            payment_deadline=await closed_history_events(client, lapsed.booking_id),
        )
    finally:
        await traffic.close()
        await asyncio.to_thread(stack.stop_app, "api-history")


async def _late_cancellation(traffic: BookingTraffic) -> Lifecycle:
    """Paid, then the customer asks to cancel and sends the signed split itself."""
    customer, run, signed = await traffic.prepared()
    await traffic.paid(customer, run, signed)
    response = await traffic.call(
        customer,
        "POST",
        f"/bookings/{run.booking_id}/cancellation",
        json={"reason": "bench: history of a cancellation"},
    )
    response.raise_for_status()
    body = response.json()
    auth = cancellation_authorization_from_api(body["authorization"])
    data = traffic.abi.encode_call(
        "cancelBooking", auth.as_abi_tuple(), bytes.fromhex(body["signature"][2:])
    )
    await traffic.driver.receipt(await traffic.send(customer, data))
    return run


async def closed_history_events(client: Client, booking_id: str) -> int:
    """Events in the booking's history once its workflow has closed."""
    handle = client.get_workflow_handle(booking_workflow_id(booking_id))
    await asyncio.wait_for(handle.result(), CLOSE_WITHIN)
    return len((await handle.fetch_history()).events)


def add_history(report: Report, paths: PathHistories) -> None:
    for name, events in paths.rows():
        happy = name.startswith("happy")
        report.add(
            "7 history",
            f"events per booking: {name}",
            f"{events} events",
            f"goal <= {GOAL_HAPPY_EVENTS}" if happy else "",
            ("met" if events <= GOAL_HAPPY_EVENTS else "MISSED") if happy else "",
        )
    report.data["history_events"] = asdict(paths)
