"""Refuse request bodies over a maximum with 413, before anything parses them.

FastAPI reads and parses a JSON body before it runs the auth dependency, so without a cap an
anonymous caller decides how much memory a request costs. A declared `Content-Length` over the
cap is refused at once; a body without one (chunked) is read here, at most the cap plus one
chunk, and handed to the app only when it fits.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PayloadTooLarge, error_response


class BodyLimitMiddleware:
    """Pure ASGI middleware: 413 for a body over `max_bytes`, declared or streamed."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None:
            if declared > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            # The server never delivers more than the declared length (HTTP framing).
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        # No "Connection: close": closing with the rest of the body unread resets the
        # connection before the client reads the 413; the server discards what follows.
        error = PayloadTooLarge(f"the request body must not exceed {self.max_bytes} bytes")
        await error_response(error)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared body length; a malformed one counts as over any limit."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() and len(value) <= 18 else 2**63
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that yields the buffered body once, then the real channel (disconnects)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


__all__ = ["BodyLimitMiddleware"]
