"""Where every process finds Temporal, the RPC providers and the escrow: one answer for all.

Each falls back to what `make dev` runs when its setting is empty. The API, the worker, the
listener and the operator CLI all ask here, so they cannot disagree about an empty setting.
"""

from __future__ import annotations

from dataclasses import dataclass

from bookme.settings import Settings, SettingsError
from chain.deploy import Deployment


@dataclass(frozen=True, kw_only=True)
class EscrowContract:
    """The escrow to follow and the first block worth scanning for its events."""

    address: str
    start_block: int


def temporal_address(settings: Settings) -> str:
    return settings.temporal_address or f"127.0.0.1:{settings.dev_temporal_port}"


def rpc_urls(settings: Settings, *, websocket: bool = False) -> list[str]:
    """Configured providers, else the embedded anvil (its WebSocket first when `websocket`:
    the listener follows new heads over it, with HTTP as the backup)."""
    if settings.rpc_urls:
        return list(settings.rpc_urls)
    port = settings.dev_anvil_port
    local = [f"http://127.0.0.1:{port}"]
    return [f"ws://127.0.0.1:{port}", *local] if websocket else local


def deployment(settings: Settings) -> Deployment | None:
    """What `bookme deploy` wrote, if the deployment file exists."""
    if not settings.deployment_file.is_file():
        return None
    return Deployment.read_json(settings.deployment_file)


def known_escrow_address(settings: Settings) -> str | None:
    """BOOKME_ESCROW_ADDRESS, else the deployment file's escrow, else None (nothing deployed)."""
    if settings.escrow_address:
        return settings.escrow_address
    deployed = deployment(settings)
    return deployed.escrow if deployed else None


def escrow_address(settings: Settings) -> str:
    """As `known_escrow_address`, for the processes that cannot run without one."""
    address = known_escrow_address(settings)
    if not address:
        raise SettingsError(
            f"no BOOKME_ESCROW_ADDRESS and no deployment file at {settings.deployment_file}"
        )
    return address


def escrow_contract(settings: Settings, start_block: int | None = None) -> EscrowContract:
    """The escrow and where to start scanning: `start_block`, else the deployment's block when
    the deployment file describes this escrow, else 0."""
    deployed = deployment(settings)  # read once: address and block from the same file
    address = settings.escrow_address or (deployed.escrow if deployed else "")
    if not address:
        raise SettingsError(
            f"no BOOKME_ESCROW_ADDRESS and no deployment file at {settings.deployment_file}"
        )
    if start_block is None:
        same = deployed is not None and deployed.escrow.lower() == address.lower()
        start_block = deployed.block_number if deployed and same else 0
    return EscrowContract(address=address, start_block=start_block)
