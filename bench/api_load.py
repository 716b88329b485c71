"""`payment-authorization` under fixed concurrency, and the 10x-rate-limit status-code check."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

import httpx

from bench.stack import BenchStack
from bench.traffic import BenchFailure, BookingTraffic, Customer, Lifecycle


@dataclass(frozen=True, kw_only=True)
class RateLimitCheck:
    signature_limit: int
    create_limit: int
    signature_codes: dict[int, int]
    create_codes: dict[int, int]

    @property
    def unexpected(self) -> int:
        """Responses other than success or 429 (the check passes at 0)."""
        return sum(
            n
            for codes in (self.signature_codes, self.create_codes)
            for code, n in codes.items()
            if code not in (200, 201, 429)
        )


async def _created(traffic: BookingTraffic, count: int) -> list[tuple[Customer, Lifecycle]]:
    limit = asyncio.Semaphore(8)

    async def one() -> tuple[Customer, Lifecycle]:
        async with limit:
            customer, run = traffic.customer(), Lifecycle()
            await traffic.create(customer, run)
            return customer, run

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def authorization_load(
    traffic: BookingTraffic, *, count: int, concurrency: int
) -> tuple[list[float], float]:
    """Round trips (s) of the first authorization of `count` fresh bookings; and elapsed."""
    bookings = await _created(traffic, count)
    limit = asyncio.Semaphore(concurrency)
    samples: list[float] = []

    async def one(customer: Customer, run: Lifecycle) -> None:
        async with limit:
            began = time.perf_counter()
            await traffic.authorize(customer, run)
            samples.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(one(c, r) for c, r in bookings))
    return samples, time.perf_counter() - began


async def rate_limit_check(stack: BenchStack, traffic: BookingTraffic) -> RateLimitCheck:
    """10x the default limits against a second API process that runs with them."""
    signature_limit, create_limit = 10, 60
    url = await stack.start_api(
        "api-limited",
        {
            "BOOKME_RATE_LIMIT_PER_MINUTE": str(create_limit),
            "BOOKME_SIGNATURE_RATE_LIMIT_PER_MINUTE": str(signature_limit),
        },
    )
    bookings = await _created(traffic, 5)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60.0) as http:
            limit = asyncio.Semaphore(8)

            async def hit(headers: dict[str, str], path: str, body: object | None) -> int:
                async with limit:
                    try:
                        response = await http.post(path, headers=headers, json=body)
                    except httpx.HTTPError:
                        return 0  # no answer at all: counted against the check
                    return response.status_code

            signature = await asyncio.gather(
                *(
                    hit(c.headers, f"/bookings/{r.booking_id}/payment-authorization", None)
                    for n in range(10 * signature_limit)
                    for c, r in [bookings[n % len(bookings)]]
                )
            )
            # The marketplace's credential creates the bookings: its limit is the one tried.
            body = traffic.create_body(bookings[0][0])
            create = await asyncio.gather(
                *(hit(traffic.marketplace, "/bookings", body) for _ in range(10 * create_limit))
            )
    finally:
        await asyncio.to_thread(stack.stop_app, "api-limited")
    if not any(code == 429 for code in signature):
        raise BenchFailure("10x the signature limit produced no 429")
    return RateLimitCheck(
        signature_limit=signature_limit,
        create_limit=create_limit,
        signature_codes=dict(Counter(signature)),
        create_codes=dict(Counter(create)),
    )
