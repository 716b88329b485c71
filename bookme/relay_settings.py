"""Settings of relayed payments (issue #19): the platform sends a customer's one-signature
payment and pays its gas, within these limits (environment ``BOOKME_RELAY_*``).

A base class of ``bookme.settings.Settings``, so they are read with every other knob by the one
settings object; kept here because they belong together and carry their one rule (when
relaying is off).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class RelaySettings(BaseSettings):
    """The relayer's switch and limits; every gas figure is paid from the operator's ETH."""

    # Off: the API refuses relayed payments (503 relay_unavailable); paying directly still works.
    relay_enabled: bool = True
    # Most gas one relayed payment may use (the estimate with headroom); above it, not sent.
    relay_max_gas: int = Field(default=400_000, ge=21_000)
    # Below this operator balance relaying stops (the ETH is kept for auto-completes and refunds).
    relay_min_operator_balance_wei: int = Field(default=2 * 10**16, ge=0)
    # Relayed payment requests per customer and minute (each may cost the platform gas).
    relay_rate_limit_per_minute: int = Field(default=5, ge=1)

    def relay_off_reason(self, operator_balance_wei: int | None) -> str | None:
        """Why relaying is off now (None: it is on); ``None`` balance means not known yet."""
        if not self.relay_enabled:
            return "relayed payments are turned off; pay from your wallet instead"
        if operator_balance_wei is not None and (
            operator_balance_wei < self.relay_min_operator_balance_wei
        ):
            return "the platform's relayer is low on gas; pay from your wallet instead"
        return None
