"""Where the worker and the operator CLI find Temporal, the RPC providers and the escrow.

Each falls back to what `make dev` runs when its setting is empty.
"""

from __future__ import annotations

from bookme.settings import Settings, SettingsError
from chain.deploy import Deployment


def temporal_address(settings: Settings) -> str:
    return settings.temporal_address or f"127.0.0.1:{settings.dev_temporal_port}"


def rpc_urls(settings: Settings) -> list[str]:
    return list(settings.rpc_urls) or [f"http://127.0.0.1:{settings.dev_anvil_port}"]


def escrow_address(settings: Settings) -> str:
    """The configured escrow, else the one `bookme deploy` wrote to the deployment file."""
    if settings.escrow_address:
        return settings.escrow_address
    try:
        return Deployment.read_json(settings.deployment_file).escrow
    except FileNotFoundError:
        raise SettingsError(
            f"no BOOKME_ESCROW_ADDRESS and no deployment file at {settings.deployment_file}"
        ) from None
