"""Who may read the detailed `/health` report and `/metrics` (BOOKME_OBSERVABILITY_RESTRICTED).

Unrestricted (the default) anyone may. Restricted, a caller needs an operator bearer token or
an address in BOOKME_OBSERVABILITY_NETWORKS (the Prometheus server's network, say). The address is
the one `api/deps.client_ip` settles, so only trusted proxies can speak for a client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import structlog
from fastapi import Request

from api.deps import AppState, client_ip
from api.errors import ApiError

log = structlog.get_logger(__name__)


def in_networks(address: str, networks: Sequence[str]) -> bool:
    """Whether `address` lies in one of `networks` (addresses or CIDRs); False if unparsable."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in networks)


async def may_observe(request: Request, state: AppState) -> bool:
    """True when the caller may see health details and metrics."""
    settings = state.settings
    if not settings.observability_restricted:
        return True
    if in_networks(client_ip(request), settings.observability_networks):
        return True
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    try:
        principal = await state.verifier.verify(token.strip())
    except ApiError:
        return False
    return principal.is_operator
