"""The one settings object: every knob, read from the environment (prefix ``BOOKME_``) or ``.env``.

Build it once in ``main()`` or a lifespan with ``Settings()``; nothing here runs at import.
A URL left empty means "start the embedded service" in ``make dev`` and the tests; set it to
point at a real service instead.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from bookme.relay_settings import RelaySettings
from bookme.settings_checks import JWT_ALGORITHMS, production_problems
from bookme.webhook_settings import WebhookSettings
from chain.basis_points import BPS_DENOMINATOR

if TYPE_CHECKING:
    from workflows.types import BookingPolicy

DEV_JWT_SECRET = "dev-secret-change-me"  # noqa: S105 - refused outside development


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class SettingsError(ValueError):
    """Configuration that must not start a process (placeholder secret, missing key...)."""


class Settings(RelaySettings, WebhookSettings):
    """Every configurable knob of the service, with development defaults."""

    model_config = SettingsConfigDict(
        env_prefix="BOOKME_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    environment: Environment = Environment.DEVELOPMENT
    log_level: str = "INFO"
    log_json: bool = False
    data_dir: Path = Path(".dev")

    # --- Postgres: empty = embedded server under data_dir ---
    database_url: str = ""
    db_pool_size: int = Field(default=10, ge=1)

    # --- Temporal: empty = embedded dev server (with Web UI) ---
    temporal_address: str = ""
    temporal_namespace: str = "default"
    task_queue: str = "bookings"
    worker_max_concurrent_activities: int = Field(default=100, ge=1)
    worker_max_concurrent_workflow_tasks: int = Field(default=100, ge=1)
    # Open workflows kept in the worker's memory; the rest (mostly settled bookings waiting out
    # their finality period) are replayed from history when they next wake. Bounds the RSS.
    worker_max_cached_workflows: int = Field(default=500, ge=0)
    temporal_ui_url: str = ""  # for history links; empty = the embedded dev server's Web UI
    # A Temporal cluster over TLS or Temporal Cloud (bookme/temporal_connect.py). TLS is on when
    # any of these (or an API key) is set; BOOKME_TEMPORAL_TLS=true for a publicly trusted server.
    temporal_tls: bool = False
    temporal_tls_ca_file: Path | None = None
    temporal_tls_cert_file: Path | None = None  # mTLS: with BOOKME_TEMPORAL_TLS_KEY_FILE
    temporal_tls_key_file: Path | None = None
    temporal_tls_server_name: str = ""
    temporal_api_key: SecretStr | None = None
    # A profile of Temporal's own client config (TEMPORAL_CONFIG_FILE, TEMPORAL_* variables),
    # read under the BOOKME_TEMPORAL_* settings; empty = not read.
    temporal_profile: str = ""
    # The worker and the listener wait at startup for a Temporal that does not answer yet (rather
    # than exit into a supervisor's restart loop); give up after this many seconds, 0 = never.
    temporal_connect_wait_seconds: float = Field(default=0, ge=0)

    # --- Chain: empty provider list = embedded anvil ---
    rpc_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    chain_id: int = 31337
    escrow_address: str = ""
    usdc_address: str = ""
    deployment_file: Path = Path(".dev/deployment.json")
    confirmations: int = Field(default=2, ge=0)
    rpc_timeout_seconds: float = Field(default=10.0, gt=0)
    head_stale_after_seconds: float = Field(default=30.0, gt=0)
    listener_poll_interval_seconds: float = Field(default=1.0, gt=0)
    listener_max_block_range: int = Field(default=2000, ge=1)
    # Worker, API and listener re-check the chain against these settings this often (chain id,
    # contract code, signing domain, fee policy, roles, USDC; bookme/world.py); 0 = at start only.
    world_check_interval_seconds: int = Field(default=300, ge=0)

    # --- Keys: from the environment or a file, never logged ---
    signer_private_key: SecretStr | None = None
    signer_key_file: Path | None = None
    operator_private_key: SecretStr | None = None
    operator_key_file: Path | None = None
    # The contract owner: only `bookme unpause` / `bookme rotate-signer` need it (keep it offline).
    owner_private_key: SecretStr | None = None
    owner_key_file: Path | None = None
    # The account `bookme deploy` sends from off local chains: it pays the gas and owns nothing
    # afterwards (the escrow's owner is the timelock). Only the one-shot deploy job holds it.
    deployer_private_key: SecretStr | None = None
    deployer_key_file: Path | None = None
    # Delay of the OwnerTimelock that owns the escrow (`bookme deploy`): empty = 0 on local chains
    # (31337/1337), 48 h elsewhere; 0 is refused off local chains (chain/deploy.py).
    owner_timelock_delay_seconds: int | None = Field(default=None, ge=0)

    # --- Booking timers (seconds) ---
    monitoring_window_seconds: int = Field(default=180, ge=1)
    push_grace_seconds: int = Field(default=30, ge=0)
    poll_interval_seconds: int = Field(default=10, ge=1)
    payment_deadline_seconds: int = Field(default=1800, ge=1)
    authorization_ttl_seconds: int = Field(default=300, ge=1)
    auto_complete_delay_seconds: int = Field(default=7200, ge=0)
    late_cancellation_window_seconds: int = Field(default=86400, ge=0)
    # How long a settled booking's workflow stays open to hear that a reorg removed its
    # settlement: cover the listener's reorg window (256 blocks) at the chain's block time.
    settlement_finality_seconds: int = Field(default=900, ge=0)

    # --- Fee policy, basis points (must equal the contract's on-chain policy) ---
    platform_fee_bps: int = Field(default=1000, ge=0, le=BPS_DENOMINATOR)
    platform_fee_with_inviter_bps: int = Field(default=500, ge=0, le=BPS_DENOMINATOR)
    inviter_fee_bps: int = Field(default=500, ge=0, le=BPS_DENOMINATOR)
    late_cancellation_provider_bps: int = Field(default=5000, ge=0, le=BPS_DENOMINATOR)

    # --- API ---
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_algorithm: str = "HS256"
    jwks_url: str = ""
    jwt_audience: str = ""
    jwt_issuer: str = ""
    # Requests per user and minute on every authenticated route, and per client address on
    # creation (the marketplace's service credential acts for everyone: it is not limited).
    rate_limit_per_minute: int = Field(default=60, ge=1)
    # Signing endpoints (payment and cancellation authorizations) are the costly, abusable ones.
    signature_rate_limit_per_minute: int = Field(default=10, ge=1)
    # ...and per client address, for all its users together: higher, because many users share
    # one address behind a NAT (an office, a mobile carrier) or a proxy that is not trusted.
    signature_rate_limit_per_ip_per_minute: int = Field(default=100, ge=1)
    max_booking_amount_units: int = Field(default=100_000 * 10**6, ge=1)
    # Reverse proxies in front of the API (addresses or CIDRs, comma-separated): only their
    # X-Forwarded-For names the client. Empty = none, the socket peer is the client. Never
    # "*": any client could then choose the address its requests are counted under.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Largest request body (413 above it), checked before the body is parsed or the caller known.
    max_request_body_bytes: int = Field(default=64 * 1024, ge=1)
    # Open event streams (429 above either): a stream holds no DB connection, but each polls.
    max_streams_per_user: int = Field(default=5, ge=1)
    max_streams_per_process: int = Field(default=200, ge=1)
    # More refused payment/cancellation authorizations than this from one user within the
    # window is raised as suspicious activity (metric, warning log, notifier).
    suspicious_refusals: int = Field(default=5, ge=1)
    suspicious_window_seconds: int = Field(default=300, ge=60)

    # --- Identity (README "Integrating with your marketplace" > "Identity") ---
    # Claim names read from a verified token. A token with a role claim is taken at its word
    # (role and wallet from the claims); one without (Privy: only `sub`) is looked up in the
    # party directory, or given `jwt_default_role` when there is none.
    jwt_role_claim: str = "role"
    jwt_wallet_claim: str = "wallet"
    # Empty: a marketplace user, customer or provider per booking; "customer" or "provider" pin it.
    jwt_default_role: str = ""
    # Subjects of client-credentials tokens from the identity provider that are the marketplace's
    # server (role `service`), comma-separated.
    jwt_service_subjects: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Sign-In with Ethereum: the domain (host[:port] of the marketplace's frontend) a signed
    # message must name, and how long a nonce stays usable.
    siwe_domain: str = "localhost"
    siwe_nonce_ttl_seconds: int = Field(default=600, ge=30)
    # Whether a payment authorization needs the customer's wallet linked with SIWE first.
    # Empty = on in production, off elsewhere.
    require_wallet_proof: bool | None = None
    # Browser origins of the marketplace's frontend allowed to call the API (comma-separated;
    # "*" is any origin, refused in production together with credentials).
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cors_allow_credentials: bool = False

    # --- Reconciliation (issue #7): schedule, scan windows, invariant thresholds ---
    reconcile_interval_seconds: int = Field(default=6 * 3600, ge=60)
    # Event gap check: blocks below the listener's checkpoint re-read by a scheduled run
    # (a full run starts at reconcile_from_block, normally the deployment block).
    reconcile_event_lookback_blocks: int = Field(default=20_000, ge=1)
    reconcile_from_block: int = Field(default=0, ge=0)
    reconcile_received_grace_seconds: int = Field(default=600, ge=0)
    reconcile_stuck_grace_seconds: int = Field(default=900, ge=0)
    worker_metrics_port: int = Field(default=9464, ge=0)  # 0 = no /metrics from the worker
    # The listener's /metrics (0 = off); on by default, as the worker's. Both servers bind here:
    # loopback by default, 0.0.0.0 where Prometheus scrapes from another host or container.
    listener_metrics_port: int = Field(default=9465, ge=0)
    metrics_host: str = "127.0.0.1"
    # The API's detailed /health and /metrics: restricted, only operator tokens and these
    # networks (addresses or CIDRs) see them; everyone else gets the status alone (and 403).
    observability_restricted: bool = False
    observability_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # --- Operator gas: its ETH pays auto-completes and refunds ---
    # Below this balance /health says degraded and the OperatorGasLow alert fires.
    operator_min_balance_wei: int = Field(default=10**16, ge=0)
    # No operator transaction is signed with a higher maxFeePerGas; when the market needs more
    # the send is refused (retried later by the booking), never overpaid.
    operator_max_fee_per_gas_wei: int = Field(default=100 * 10**9, ge=1)
    # OpenTelemetry traces (API -> workflow -> activity) to this OTLP/HTTP endpoint
    # (http://collector:4318/v1/traces); empty = no tracing at all.
    otlp_traces_endpoint: str = ""
    # How often the worker samples the operator balance, bookings by status, webhook backlog.
    worker_gauges_interval_seconds: float = Field(default=60.0, gt=0)

    # --- Data retention (Temporal Schedule bookme-retention, daily; docs/runbook.md) ---
    retention_events_days: int = Field(default=90, ge=1)
    retention_nonces_days: int = Field(default=30, ge=1)
    retention_rate_limit_hours: int = Field(default=24, ge=1)

    # --- Party directory: the marketplace's users table (README "Your bookings and users") ---
    # Checked as SQL identifiers and quoted; the table may be schema-qualified (empty: no
    # directory, so no adoption of the marketplace's rows and no sub-only tokens). The referrer
    # column holds the referrer's user id ("" = no referrals); the subject column holds the
    # identity provider's subject, e.g. a Privy DID ("" = none).
    directory_users_table: str = "users"
    directory_id_column: str = "id"
    directory_wallet_column: str = "wallet_address"
    directory_referrer_column: str = "referred_by"
    directory_subject_column: str = "privy_did"

    # --- Embedded service ports for `make dev` (tests pick free ports) ---
    dev_postgres_port: int = 5432
    dev_temporal_port: int = 7233
    dev_temporal_ui_port: int = 8233
    dev_anvil_port: int = 8545

    @field_validator(
        "owner_timelock_delay_seconds",
        "temporal_tls_ca_file",
        "temporal_tls_cert_file",
        "temporal_tls_key_file",
        "temporal_api_key",
        mode="before",
    )
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        """An empty value (``BOOKME_OWNER_TIMELOCK_DELAY_SECONDS=``, as in .env.example) is unset."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "rpc_urls", "trusted_proxies", "jwt_service_subjects", "cors_origins", mode="before"
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """Lists are comma-separated (BOOKME_RPC_URLS in order: WebSocket first, HTTP backups)."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("observability_networks", mode="before")
    @classmethod
    def _observability_networks(cls, value: object) -> object:
        """Comma-separated addresses or CIDRs."""
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        for entry in value if isinstance(value, list) else []:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"BOOKME_OBSERVABILITY_NETWORKS: {entry!r} is not an IP address or CIDR"
                ) from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        """Each trusted proxy is an IP address or network; "*" (anyone) is refused."""
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"BOOKME_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR"
                    " (list the proxies; '*' would let any client pick its address)"
                ) from None
        return value

    @field_validator("require_wallet_proof", mode="before")
    @classmethod
    def _by_environment_when_empty(cls, value: object) -> object:
        """``BOOKME_REQUIRE_WALLET_PROOF=`` (as in .env.example): decided by the environment."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("jwt_default_role")
    @classmethod
    def _party_role(cls, value: str) -> str:
        """Only a party role: a default of operator or service would make every token one."""
        if value not in ("", "customer", "provider", "user"):
            raise SettingsError(
                f"BOOKME_JWT_DEFAULT_ROLE={value!r} must be empty, customer, provider or user"
            )
        return value

    @field_validator("jwt_algorithm")
    @classmethod
    def _known_jwt_algorithm(cls, value: str) -> str:
        """An allow-list: "none" or a typo must never decide how tokens are checked."""
        if value not in JWT_ALGORITHMS:
            raise SettingsError(
                f"BOOKME_JWT_ALGORITHM={value!r} is not one of {', '.join(sorted(JWT_ALGORITHMS))}"
            )
        return value

    @model_validator(mode="after")
    def _refuse_placeholders_outside_development(self) -> Self:
        if self.environment is not Environment.PRODUCTION:
            return self
        problems = production_problems(self)
        if problems:
            raise SettingsError("refusing to start: " + "; ".join(problems))
        return self

    def wallet_proof_required(self) -> bool:
        """Whether paying needs a wallet linked with SIWE (`require_wallet_proof`, else by env)."""
        if self.require_wallet_proof is not None:
            return self.require_wallet_proof
        return self.environment is Environment.PRODUCTION

    def signer_key(self) -> SecretStr | None:
        """The EIP-712 signer key from the environment or its file."""
        return _read_key(self.signer_private_key, self.signer_key_file, "signer")

    def operator_key(self) -> SecretStr | None:
        """The operator key (auto-complete, emergency refunds) from the environment or its file."""
        return _read_key(self.operator_private_key, self.operator_key_file, "operator")

    def owner_key(self) -> SecretStr | None:
        """The contract owner key (unpause, signer rotation) from the environment or its file."""
        return _read_key(self.owner_private_key, self.owner_key_file, "owner")

    def deployer_key(self) -> SecretStr | None:
        """The key `bookme deploy` sends from (off local chains) from the environment or its file."""
        return _read_key(self.deployer_private_key, self.deployer_key_file, "deployer")

    def booking_policy(self) -> BookingPolicy:
        """The policy a new booking (or orphan payment) is frozen with, from these settings."""
        # Imported here: reading settings should not load the workflow package (and Temporal).
        from workflows.types import BookingPolicy

        return BookingPolicy(
            chain_id=self.chain_id,
            confirmations=self.confirmations,
            monitoring_window_seconds=self.monitoring_window_seconds,
            push_grace_seconds=self.push_grace_seconds,
            poll_interval_seconds=self.poll_interval_seconds,
            payment_deadline_seconds=self.payment_deadline_seconds,
            authorization_ttl_seconds=self.authorization_ttl_seconds,
            auto_complete_delay_seconds=self.auto_complete_delay_seconds,
            late_cancellation_window_seconds=self.late_cancellation_window_seconds,
            late_cancellation_provider_bps=self.late_cancellation_provider_bps,
            platform_fee_bps=self.platform_fee_bps,
            platform_fee_with_inviter_bps=self.platform_fee_with_inviter_bps,
            inviter_fee_bps=self.inviter_fee_bps,
            settlement_finality_seconds=self.settlement_finality_seconds,
        )


def default_booking_policy(**overrides: Any) -> BookingPolicy:
    """The policy under default settings (environment ignored), with `overrides`: tests, benches."""
    return replace(Settings.model_construct().booking_policy(), **overrides)


def _read_key(value: SecretStr | None, path: Path | None, name: str) -> SecretStr | None:
    if value is not None:
        return value
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        # The path is configuration, not a secret; the contents never reach a message.
        raise SettingsError(f"cannot read the {name} key file {path}: {exc.strerror}") from None
    if not text:
        raise SettingsError(f"the {name} key file {path} is empty")
    return SecretStr(text)
