"""anvil from the npm package `@foundry-rs/anvil-linux-amd64`, installed into node_modules."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import httpx
from eth_utils.address import to_checksum_address

from bookme.embedded.process import ManagedProcess

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, kw_only=True)
class DevAccount:
    """A funded local-only wallet; its key is anvil's published test key."""

    address: str
    private_key: str

    def __repr__(self) -> str:
        return f"DevAccount(address={self.address!r})"


# How many funded accounts anvil makes unless asked for more (`make dev`, the tests).
ANVIL_DEFAULT_ACCOUNTS = 10

# anvil keeps few block states in memory and writes the older ones to disk, by default under
# ~/.foundry/anvil/tmp, without bound and never removed (an hour's soak left 11 GB there, and
# the test runs of one day filled this machine's disk). We read state only near the head
# (a receipt's block, a reorg a few blocks deep), so a few hundred are plenty.
ANVIL_PERSISTED_STATES = 256


def anvil_binary() -> Path:
    path = REPO_ROOT / "node_modules" / ".bin" / "anvil"
    if not path.exists():
        raise RuntimeError(f"{path} is missing; run `make install`")
    return path


@dataclass
class AnvilNode:
    """A local EVM chain. ``block_time`` None = a block per transaction (tests); ``accounts``
    funded accounts from the published mnemonic (a load run wants a wallet per booking in
    flight)."""

    port: int
    log_path: Path
    chain_id: int = 31337
    block_time: float | None = None
    state_file: Path | None = None
    host: str = "127.0.0.1"
    account_count: int = ANVIL_DEFAULT_ACCOUNTS

    def __post_init__(self) -> None:
        self._process: ManagedProcess | None = None
        self.accounts: tuple[DevAccount, ...] = ()

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def states_dir(self) -> Path:
        """Where this node's old block states go: beside its log, removed at start and stop."""
        return self.log_path.with_suffix(".states")

    def start(self, timeout: float = 30.0) -> None:
        config_out = self.log_path.with_suffix(".accounts.json")
        config_out.unlink(missing_ok=True)
        # A previous process's states are of no use to this one (anvil starts a new folder).
        shutil.rmtree(self.states_dir, ignore_errors=True)
        argv = [
            str(anvil_binary()),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--config-out",
            str(config_out),
            "--accounts",
            str(self.account_count),
            "--cache-path",
            str(self.states_dir),
            "--max-persisted-states",
            str(ANVIL_PERSISTED_STATES),
        ]
        if self.block_time:
            argv += ["--block-time", str(self.block_time)]
        if self.state_file:
            # Loaded at start, dumped on exit (and periodically) so `make dev` resumes.
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            argv += ["--state", str(self.state_file), "--state-interval", "10"]
        self._process = ManagedProcess(name="anvil", argv=argv, log_path=self.log_path)
        self._process.start()
        self._process.wait_ready(self._answers, timeout)
        self._process.wait_ready(config_out.exists, timeout)
        config = json.loads(config_out.read_text())
        self.accounts = tuple(
            DevAccount(address=to_checksum_address(addr), private_key=key)
            for addr, key in zip(config["available_accounts"], config["private_keys"], strict=True)
        )

    def _answers(self) -> bool:
        try:
            response = httpx.post(
                self.http_url,
                json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                timeout=1.0,
            )
            return response.status_code == 200 and "result" in response.json()
        except httpx.HTTPError:
            return False

    def rpc(self, method: str, *params: object) -> object:
        """A synchronous JSON-RPC call (test and dev tooling: snapshots, time travel)."""
        response = httpx.post(
            self.http_url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
            timeout=30.0,
        )
        body = response.json()
        if "error" in body:
            raise RuntimeError(f"{method} failed: {body['error']}")
        return body["result"]

    def stop(self) -> None:
        if self._process:
            self._process.stop()
        shutil.rmtree(self.states_dir, ignore_errors=True)
