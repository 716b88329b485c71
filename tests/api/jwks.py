"""A real JWKS endpoint on a loopback port, serving the public half of a key made in the test,
and tokens shaped like Privy's access tokens (ES256, `iss` privy.io, `aud` the app id, `sub` a
DID, nothing else)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

ISSUER = "privy.io"
APP_ID = "cm-test-app-id"
KID = "privy-test-key"


def es256_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@contextmanager
def serve_jwk_set(*jwks: dict[str, Any], path: str = "/.well-known/jwks.json") -> Iterator[str]:
    """Serve {"keys": [...]} over HTTP on 127.0.0.1; yields the URL."""
    document = json.dumps({"keys": list(jwks)}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{path}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve_jwks(key: ec.EllipticCurvePrivateKey) -> Iterator[str]:
    """The public half of an ES256 key, at a Privy-shaped JWKS URL."""
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": KID, "use": "sig", "alg": "ES256"})
    with serve_jwk_set(jwk, path=f"/api/v1/apps/{APP_ID}/jwks.json") as url:
        yield url


def privy_token(
    key: ec.EllipticCurvePrivateKey,
    sub: str,
    *,
    audience: str = APP_ID,
    issuer: str = ISSUER,
    **extra: Any,
) -> str:
    """An access token with only the claims Privy puts in one (plus `extra`)."""
    now = int(time.time())
    claims = {"sid": "session-1", "sub": sub, "iss": issuer, "aud": audience, "iat": now}
    claims.update({"exp": now + 3600, **extra})
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": KID})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
