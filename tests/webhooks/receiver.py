"""A real HTTP receiver on 127.0.0.1 for the webhook tests: answers as told, records everything."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.body)
        return event


@dataclass
class Receiver:
    """Answers the queued statuses in order, then ``default``; ``port`` 0 picks a free one."""

    port: int = 0
    default: int = 200
    answers: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/bookme"

    def delivered(self) -> list[dict[str, Any]]:
        """The events answered 2xx, in arrival order."""
        return [r.event for r in self.received if 200 <= r.answered < 300]

    async def _handle(self, request: web.Request) -> web.Response:
        status = self.answers.pop(0) if self.answers else self.default
        self.received.append(
            Received(headers=dict(request.headers), body=await request.read(), answered=status)
        )
        return web.Response(status=status, text="ok" if status < 300 else "no")

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hooks/bookme", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
