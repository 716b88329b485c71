"""Seeded random requests against every documented operation: no input produces a 5xx, and
every error has the shared shape. Complements test_schemathesis (which generates from the
schema) with hostile values the schema does not suggest: broken bearer tokens, Basic auth,
undecodable bodies, path traversal, absurd numbers."""

from __future__ import annotations

import contextlib
import random
import string
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.api.conftest import ApiFactory
from tests.api.fakes import FakeChain
from tests.api.helpers import (
    CUSTOMER_AUTH,
    OPERATOR_AUTH,
    OTHER_CUSTOMER_AUTH,
    PROVIDER_AUTH,
    SERVICE_AUTH,
    booking_body,
    serve,
)

pytestmark = pytest.mark.integration

REQUESTS = 400
NASTY = [
    "",
    " ",
    "0",
    "-1",
    "1e309",
    "NaN",
    "null",
    "../../etc/passwd",
    "%00",
    "\u202e\u0000",
    "😀" * 50,
    "x" * 5000,
    "0x" + "f" * 40,
    "0x" + "F" * 64,
    "PAID",
    "99999999999999999999999999",
    "2020-01-01T00:00:00Z",
    "' OR 1=1 --",
]


def junk(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**70, 1.5, -0.0, 1e300])
    if kind == 3:
        return rng.choice(NASTY)
    if kind == 4:
        return "".join(rng.choice(string.printable) for _ in range(rng.randrange(30)))
    if kind == 5:
        return [junk(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["amount", "reason", "tx_hash", "kind", "a"]): junk(rng, depth + 1)}


def body_for(rng: random.Random, path: str) -> Any:
    if path == "/bookings":
        base: dict[str, Any] = booking_body()
    elif path.endswith("/transactions"):
        base = {"tx_hash": "0x" + "ab" * 32, "kind": "payment"}
    elif path.endswith(("/cancellation", "/emergency-cancel")):
        base = {"reason": "fuzz"}
    else:
        base = {}
    choice = rng.randrange(4)
    if choice == 0:
        return junk(rng)
    if choice == 1 and base:
        mutated = dict(base)
        mutated[rng.choice(list(base))] = junk(rng)
        return mutated
    if choice == 2 and base:
        mutated = dict(base)
        mutated.pop(rng.choice(list(base)))
        return mutated
    return base


async def test_no_input_produces_a_server_error(client: httpx.AsyncClient) -> None:
    rng = random.Random(20261122)
    created = await client.post("/bookings", json=booking_body(), headers=SERVICE_AUTH)
    real_id = created.json()["id"]
    schema = (await client.get("/openapi.json")).json()
    operations = [
        (method.upper(), path)
        for path, methods in schema["paths"].items()
        for method in methods
        if not path.endswith("/stream")  # an accepted stream never ends; covered in test_stream
    ]
    auths = [
        CUSTOMER_AUTH,
        PROVIDER_AUTH,
        OPERATOR_AUTH,
        OTHER_CUSTOMER_AUTH,
        SERVICE_AUTH,
        {},
        {"Authorization": "Bearer " + rng.choice(NASTY)},
        {"Authorization": "Basic abc"},
    ]
    failures: list[str] = []
    seen: set[int] = set()
    for _ in range(REQUESTS):
        method, template = rng.choice(operations)
        booking_id = rng.choice([real_id, real_id, str(uuid.uuid4()), rng.choice(NASTY) or "x"])
        path = template.replace("{booking_id}", quote(booking_id, safe=""))
        params = {
            name: str(junk(rng))
            for name in rng.sample(
                ["status", "customer", "provider", "limit", "cursor", "after"], 2
            )
        }
        headers = dict(rng.choice(auths))
        if rng.random() < 0.3:
            headers["Idempotency-Key"] = rng.choice(NASTY).encode("ascii", "ignore").decode() or "k"
        kwargs: dict[str, Any] = {"params": params, "headers": headers}
        if method == "POST":
            if rng.random() < 0.1:
                kwargs["content"] = rng.choice([b"{", b"\xff\xfe", b"[]", b"null"])
                headers["Content-Type"] = "application/json"
            else:
                kwargs["json"] = body_for(rng, template)
        try:
            response = await client.request(method, path, **kwargs)
        except httpx.InvalidURL:
            continue
        seen.add(response.status_code)
        if response.status_code >= 500 and not (path == "/health" and response.status_code == 503):
            failures.append(
                f"{method} {path} {kwargs}: {response.status_code} {response.text[:300]}"
            )
        elif response.status_code >= 400 and path != "/health":
            error = response.json()
            if set(error) != {"code", "message", "details"}:
                failures.append(f"{method} {path}: error shape {error}")
    assert not failures, "\n".join(failures[:10])
    # The run reached past auth and validation into the handlers, not only the front door.
    assert {200, 401, 403, 404, 422} <= seen, seen


# Odd unicode for headers and parameters: digits that are not ASCII digits ("²" passed
# str.isdigit() and crashed int()), other scripts, invisible and bidi characters, long values.
ODD_UNICODE = [
    "\u00b2",
    "\u0661\u0662",
    "\U0001d7d9",
    "\u216b",
    "\u00a0",
    "\u00df",
    "\U0001f600",
    "\u202e1",
    "\ufeff1",
    "\u00e9" * 300,
    "1\u00b2",
]


def header_values(value: str) -> list[bytes]:
    """The raw bytes a client can send: latin-1 where it fits, and UTF-8 (read as latin-1)."""
    raw = [value.encode("utf-8")]
    with contextlib.suppress(UnicodeEncodeError):
        raw.append(value.encode("latin-1"))
    return raw


async def test_last_event_id_with_a_superscript_digit_is_a_422_not_a_500(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/bookings", json=booking_body(), headers=OPERATOR_AUTH)
    response = await client.get(
        f"/bookings/{created.json()['id']}/stream",
        headers=[
            *((k.encode(), v.encode()) for k, v in CUSTOMER_AUTH.items()),
            (b"Last-Event-ID", "\u00b2".encode("latin-1")),
        ],
    )
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["field"] == "header.Last-Event-ID"


async def test_odd_unicode_in_every_header_and_parameter_gets_a_4xx(
    factory: ApiFactory, worker: FakeChain
) -> None:
    # Behind a trusted proxy (this transport's address), so X-Forwarded-For is parsed too.
    app = factory.app(settings={"trusted_proxies": ["127.0.0.1"]})
    async with serve(app) as client:
        created = await client.post("/bookings", json=booking_body(), headers=OPERATOR_AUTH)
        booking_id = created.json()["id"]
        schema = (await client.get("/openapi.json")).json()
        failures: list[str] = []
        seen: set[int] = set()

        async def check(method: str, path: str, **kwargs: Any) -> None:
            try:
                response = await client.request(method, path, **kwargs)
            except httpx.InvalidURL:
                return
            seen.add(response.status_code)
            if response.status_code >= 500 and path != "/health":
                failures.append(f"{method} {path} {kwargs}: {response.status_code}")
            elif (
                response.status_code >= 400
                and path != "/health"
                and set(response.json()) != {"code", "message", "details"}
            ):
                failures.append(f"{method} {path}: error shape {response.text[:200]}")

        for path, methods in schema["paths"].items():
            for method, operation in methods.items():
                method = method.upper()
                url = path.replace("{booking_id}", booking_id)
                body = {"reason": "fuzz"} if method == "POST" and "{booking_id}" in path else None
                streams = path.endswith("/stream")
                names = [p["name"] for p in operation.get("parameters", [])]
                for odd in ODD_UNICODE:
                    for raw in header_values(odd):
                        # A valid Last-Event-ID would open an endless stream; odd ones never do.
                        for header in (
                            ("Last-Event-ID",)
                            if streams
                            else (
                                "Authorization",
                                "Idempotency-Key",
                                "Last-Event-ID",
                                "X-Forwarded-For",
                                "Content-Type",
                            )
                        ):
                            value = b"Bearer " + raw if header == "Authorization" else raw
                            headers = {**CUSTOMER_AUTH, header: value}
                            await check(method, url, headers=headers, json=body)
                    if streams:
                        continue
                    if "{booking_id}" in path:
                        weird = path.replace("{booking_id}", quote(odd, safe=""))
                        await check(method, weird, headers=OPERATOR_AUTH, json=body)
                    for name in names:
                        if name in ("booking_id", "Idempotency-Key", "Last-Event-ID"):
                            continue
                        await check(
                            method, url, params={name: odd}, headers=CUSTOMER_AUTH, json=body
                        )
        assert not failures, "\n".join(failures[:10])
        assert {401, 422} <= seen, seen
