"""`python -m api.dev_token --sub alice --role customer --wallet 0x...`: a development bearer
token signed with BOOKME_JWT_SECRET (`--role service` is the marketplace's server credential,
which creates bookings). Refuses to run when the API verifies against a JWKS or
in production, where tokens come from the identity provider."""

from __future__ import annotations

import argparse
import sys

from api.auth import WALLET_ROLES, Role, mint_token
from bookme.settings import Environment, Settings


def main(argv: list[str] | None = None) -> int:
    """Print one token to stdout."""
    parser = argparse.ArgumentParser(prog="python -m api.dev_token", description=__doc__)
    parser.add_argument("--sub", required=True, help="user id (the `sub` claim)")
    parser.add_argument("--role", required=True, choices=[r.value for r in Role])
    parser.add_argument("--wallet", help="EIP-55 wallet (required for customer and provider)")
    parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    args = parser.parse_args(argv)
    settings = Settings()
    if settings.environment is Environment.PRODUCTION or settings.jwks_url:
        parser.error("development tokens only: this API verifies tokens from an identity provider")
    if Role(args.role) in WALLET_ROLES and not args.wallet:
        parser.error("--wallet is required for customers and providers")
    token = mint_token(
        settings.jwt_secret.get_secret_value(),
        sub=args.sub,
        role=args.role,
        wallet=args.wallet,
        ttl_seconds=args.ttl,
        algorithm=settings.jwt_algorithm,
        audience=settings.jwt_audience or None,
        issuer=settings.jwt_issuer or None,
    )
    sys.stdout.write(token + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
